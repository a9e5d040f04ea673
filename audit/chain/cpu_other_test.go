//go:build !unix

package chain

import "time"

// processCPU is not measured here.
func processCPU() time.Duration { return 0 }
