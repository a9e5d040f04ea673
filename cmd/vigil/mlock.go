package main

import (
	"fmt"

	"github.com/vigilsec/vigil/core/config"
)

// lockMemory keeps the process's memory (keys, tokens, secrets in flight)
// out of swap, as Vault does, unless the configuration says
// disable_mlock = true. Dev mode never locks. Failing to lock is an error
// that stops the server: running without the protection the
// configuration asks for would be silent.
//
// All present and future mappings are locked (mlockall MCL_CURRENT |
// MCL_FUTURE), including the memory-mapped raft database files: size
// memory limits for them, or set disable_mlock = true on hosts without
// swap or with encrypted swap.
func lockMemory(cfg *config.Config, dev bool) error {
	if dev || cfg.DisableMlock {
		return nil
	}
	if err := mlockall(); err != nil {
		return fmt.Errorf("failed to lock memory (mlockall: %w): Vigil keeps keys and secrets out of swap; "+
			"give the process CAP_IPC_LOCK (systemd: AmbientCapabilities=CAP_IPC_LOCK) or a large enough RLIMIT_MEMLOCK, "+
			"or set disable_mlock = true in the configuration on a host without swap or with encrypted swap", err)
	}
	return nil
}
