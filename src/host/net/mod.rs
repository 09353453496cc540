//! placeholder: filled by the net work
