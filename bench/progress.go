package bench

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progressPrinter writes the live progress line: rewritten in place on a
// terminal, one line every few seconds otherwise (logs stay readable).
type progressPrinter struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	last    time.Time
	pending bool // a line without newline is on screen
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	p := &progressPrinter{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progressPrinter) line(s string, final bool) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", s)
		p.pending = true
		if final {
			fmt.Fprintln(p.w)
			p.pending = false
		}
		return
	}
	if !final && time.Since(p.last) < 5*time.Second {
		return
	}
	p.last = time.Now()
	fmt.Fprintln(p.w, s)
}

// note prints a status message on its own line.
func (p *progressPrinter) note(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	if p.pending {
		fmt.Fprintln(p.w)
		p.pending = false
	}
	p.mu.Unlock()
	p.line("vigil bench: "+fmt.Sprintf(format, args...), true)
}

// phase returns the Progress callback for one phase.
func (p *progressPrinter) phase(label, name string) func(Progress) {
	if p == nil || p.w == nil {
		return nil
	}
	return func(pr Progress) {
		total := ""
		if pr.Requests > 0 {
			total = fmt.Sprintf("/%d", pr.Requests)
		} else if pr.Duration > 0 {
			total = fmt.Sprintf(" of %s", pr.Duration.Round(time.Second))
		}
		p.line(fmt.Sprintf("[%s] %-7s %5.1fs%s  %8d req  %8.0f req/s  mean %6.2f ms  errors %d",
			label, name, pr.Elapsed.Seconds(), total, pr.Done, pr.Rate, pr.MeanMs, pr.Errors), false)
	}
}

// result prints a measured run's outcome.
func (p *progressPrinter) result(label string, rr RunResult) {
	errs := int64(0)
	for _, n := range rr.Errors {
		errs += n
	}
	p.line(fmt.Sprintf("[%s] done: %d req in %.1fs = %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d",
		label, rr.Requests, rr.Seconds, rr.Throughput, rr.Latency.P50Ms, rr.Latency.P99Ms, errs), true)
}

func (p *progressPrinter) done() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending {
		fmt.Fprintln(p.w)
		p.pending = false
	}
}
