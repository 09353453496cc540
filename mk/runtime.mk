# Container runtime (src/host/runtime): unit + root tests, start benchmark.
# `make test` should call test-runtime, `make bench` bench-runtime.

.PHONY: test-runtime bench-runtime

test-runtime:
	DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static
	cargo test --lib host::runtime
	cargo test --test root_runtime

# Release build of the static musl binary (what ships), then hyperfine side by
# side with crun, runc, lxc-execute, systemd-nspawn and an unshare floor.
bench-runtime:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine crun runc lxc systemd-container busybox-static python3
	rustup target add x86_64-unknown-linux-musl
	cargo build --release --target x86_64-unknown-linux-musl
	mkdir -p target/bench
	bench/start.sh target/x86_64-unknown-linux-musl/release/berth target/bench/runtime.md
	python3 bench/put_section.py docs/benchmarks.md target/bench/runtime.md
