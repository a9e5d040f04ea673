package ship

import (
	"runtime"
	"sync"
)

// Parallel calls fn(i) for every i in [0, n), spread over GOMAXPROCS
// goroutines when n is large enough to be worth it, and returns when all
// calls returned. Sinks use it to render a batch (OCSF, CEF, ClickHouse
// rows) on every core; fn must be safe for concurrent use on distinct i.
func Parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/64)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				fn(i)
			}
		}()
	}
	wg.Wait()
}
