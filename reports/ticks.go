package reports

import "math"

// Ticks are a chart's value axis: gridlines at every multiple of Step from
// 0 to Top. Step is an integer of the form 1, 2 or 5 × 10ⁿ, so every
// label is an exact count and sits on its gridline: a bar of height 4 is
// read as 4, never as 3.2 between two truncated labels.
type Ticks struct {
	Top  int64
	Step int64
}

// maxTicks is the most gridlines above zero a chart draws.
const maxTicks = 5

// NiceTicks returns the ticks for values up to m (at least one step).
// Deterministic; Top >= m and Top/Step <= maxTicks.
func NiceTicks(m int64) Ticks {
	if m < 1 {
		m = 1
	}
	raw := float64(m) / maxTicks
	p := int64(math.Pow(10, math.Floor(math.Log10(math.Max(raw, 1)))))
	step := p
	for _, f := range []int64{1, 2, 5, 10} {
		if float64(f*p) >= raw {
			step = f * p
			break
		}
	}
	step = max(step, 1)
	top := (m + step - 1) / step * step
	for top/step > maxTicks { // guard: raw rounding never needs it, kept for safety
		step = nextNice(step)
		top = (m + step - 1) / step * step
	}
	return Ticks{Top: top, Step: step}
}

// nextNice is the next 1/2/5 × 10ⁿ value above s.
func nextNice(s int64) int64 {
	p := int64(1)
	for p*10 <= s {
		p *= 10
	}
	switch s / p {
	case 1:
		return 2 * p
	case 2:
		return 5 * p
	}
	return 10 * p
}

// Values lists the tick values from 0 to Top.
func (t Ticks) Values() []int64 {
	var out []int64
	for v := int64(0); v <= t.Top; v += t.Step {
		out = append(out, v)
	}
	return out
}
