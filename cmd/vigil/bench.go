package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

func init() {
	register(&command{name: "bench", synopsis: "Benchmark Vigil (or any Vault-API server) and its audit pipeline (runs vigil-bench)", run: runBench})
}

// benchBinary finds the load generator: vigil-bench next to this binary,
// else on $PATH. The load generator is a binary of its own so that the
// server does not link it.
func benchBinary() (self, bin string, err error) {
	self, err = os.Executable()
	if err != nil {
		return "", "", fmt.Errorf("find this binary: %w", err)
	}
	bin = filepath.Join(filepath.Dir(self), "vigil-bench")
	if _, err := os.Stat(bin); err == nil {
		return self, bin, nil
	}
	if bin, err = exec.LookPath("vigil-bench"); err != nil {
		return "", "", errors.New("vigil bench runs the vigil-bench binary, found neither next to this one nor on $PATH (make build builds both)")
	}
	return self, bin, nil
}

// runBench replaces this process with vigil-bench, which starts this binary
// as the Vigil server under test unless told otherwise.
func runBench(args []string) int {
	self, bin, err := benchBinary()
	if err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	env := os.Environ()
	if os.Getenv("VIGIL_BENCH_VIGIL_BIN") == "" {
		env = append(env, "VIGIL_BENCH_VIGIL_BIN="+self)
	}
	err = syscall.Exec(bin, append([]string{"vigil-bench"}, args...), env)
	fmt.Fprintln(stderr, "Error: run vigil-bench:", err)
	return 1
}
