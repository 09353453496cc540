# Signatures (src/fleet, src/cli/sign.rs): the CLI tests and the interop
# tests against minisign itself (included by the top-level Makefile). The
# fleet unit tests run in `test-unit`.

.PHONY: test-sign
TEST_TIERS += test-sign

test-sign: deps
	$(call apt_install,minisign)
	$(CARGO) test --locked --test cli_sign --test minisign_interop --test cli_trust
