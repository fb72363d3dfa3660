"""keystate benchmarks (`make bench`): wall time, requests and peak memory of plan and
apply against local emulators with injected latency, each next to a floor and reference
peers measured in the same run (see docs/performance.md)."""
