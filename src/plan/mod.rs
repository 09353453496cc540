//! Pure planning: `plan(&Desired, &Observed) -> Plan`.
