# Fuzzing of berth's own parsers of untrusted bytes (fuzz/, cargo-fuzz on
# nightly; the product itself builds with stable and 1.75):
#
#   make fuzz        every target for FUZZ_SECONDS (300) each; the figures go
#                    into docs/benchmarks.md under "## Fuzzing"
#   make test-fuzz   every target for FUZZ_SMOKE_SECONDS (20) each, in `make test`:
#                    the seeds first, then new inputs; built without
#                    AddressSanitizer (all safe Rust but libc calls) to keep
#                    `make test` short, where `make fuzz` uses it
#
# Seeds: tests/fuzz/corpus/TARGET (tests/fuzz/make_seeds.py writes them).
# Finds and crash inputs: build/fuzz/. A crash fails the run and names its input.

.PHONY: fuzz test-fuzz fuzz-deps
FUZZ_TARGETS := manifest yaml http_response netlink_reply xz image signature registry mqtt
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 20
TEST_TIERS += test-fuzz

fuzz-deps: check-cargo
	rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

fuzz: fuzz-deps
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
	python3 bench/put_section.py docs/benchmarks.md $(BUILD)/fuzz/report.md

test-fuzz: fuzz-deps
	FUZZ_SANITIZER=none scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)
