package bench

import (
	"encoding/json"
	"math"
	"sort"
)

// Sample is one measured run as the ratio pairing sees it.
type Sample struct {
	Scenario   string
	Arm        string
	Round      int
	Throughput float64 // requests per second
	P99Ms      float64
}

// Pair is arm X against the baseline in the same scenario and round.
type Pair struct {
	Round           int     `json:"round"`
	Throughput      float64 `json:"throughput"`
	BaseThroughput  float64 `json:"baseline_throughput"`
	ThroughputRatio Float   `json:"throughput_ratio"` // X / baseline
	P99Ms           float64 `json:"p99_ms"`
	BaseP99Ms       float64 `json:"baseline_p99_ms"`
	P99Ratio        Float   `json:"p99_ratio"` // X / baseline (below 1: X is faster)
}

// Comparison collects the pairs of one arm against the baseline in one
// scenario. The medians are over the pairs; Min and Max bound the
// throughput ratios.
type Comparison struct {
	Scenario              string `json:"scenario"`
	Arm                   string `json:"arm"`
	Baseline              string `json:"baseline"`
	Pairs                 []Pair `json:"pairs"`
	MedianThroughputRatio Float  `json:"median_throughput_ratio"`
	MinThroughputRatio    Float  `json:"min_throughput_ratio"`
	MaxThroughputRatio    Float  `json:"max_throughput_ratio"`
	MedianP99Ratio        Float  `json:"median_p99_ratio"`
}

// Compare pairs every non-baseline arm's runs with the baseline's run of
// the same scenario and round (A/B/A/B: round i of X against round i of
// the baseline, never pooled across rounds). A round missing on either
// side yields no pair; an arm with no pairs yields no Comparison. The
// result is ordered by scenario (first appearance in samples), then arm
// (first appearance).
func Compare(samples []Sample, baseline string) []Comparison {
	type key struct {
		scen string
		arm  string
	}
	base := map[string]map[int]Sample{}
	var scenOrder, armOrder []string
	seenScen, seenArm := map[string]bool{}, map[string]bool{}
	byKey := map[key][]Sample{}
	for _, s := range samples {
		if !seenScen[s.Scenario] {
			seenScen[s.Scenario] = true
			scenOrder = append(scenOrder, s.Scenario)
		}
		if s.Arm == baseline {
			if base[s.Scenario] == nil {
				base[s.Scenario] = map[int]Sample{}
			}
			base[s.Scenario][s.Round] = s
			continue
		}
		if !seenArm[s.Arm] {
			seenArm[s.Arm] = true
			armOrder = append(armOrder, s.Arm)
		}
		byKey[key{s.Scenario, s.Arm}] = append(byKey[key{s.Scenario, s.Arm}], s)
	}
	var out []Comparison
	for _, scen := range scenOrder {
		for _, arm := range armOrder {
			runs := byKey[key{scen, arm}]
			sort.Slice(runs, func(i, j int) bool { return runs[i].Round < runs[j].Round })
			c := Comparison{Scenario: scen, Arm: arm, Baseline: baseline}
			var tr, pr []float64
			for _, s := range runs {
				b, ok := base[scen][s.Round]
				if !ok {
					continue
				}
				p := Pair{Round: s.Round, Throughput: s.Throughput, BaseThroughput: b.Throughput,
					ThroughputRatio: ratio(s.Throughput, b.Throughput), P99Ms: s.P99Ms, BaseP99Ms: b.P99Ms,
					P99Ratio: ratio(s.P99Ms, b.P99Ms)}
				c.Pairs = append(c.Pairs, p)
				tr = append(tr, float64(p.ThroughputRatio))
				pr = append(pr, float64(p.P99Ratio))
			}
			if len(c.Pairs) == 0 {
				continue
			}
			c.MedianThroughputRatio, c.MedianP99Ratio = Float(median(tr)), Float(median(pr))
			lo, hi := minMax(tr)
			c.MinThroughputRatio, c.MaxThroughputRatio = Float(lo), Float(hi)
			out = append(out, c)
		}
	}
	return out
}

// Float is a float64 that encodes NaN and ±Inf as JSON null ("not
// available") instead of failing the whole encoding.
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(x)
}

// UnmarshalJSON implements json.Unmarshaler (null is NaN).
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var x float64
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*f = Float(x)
	return nil
}

// ratio is a/b, or NaN when b is zero (reported as "n/a").
func ratio(a, b float64) Float {
	if b == 0 {
		return Float(math.NaN())
	}
	return Float(a / b)
}

// median of xs (mean of the middle two for an even count); NaN values are
// ignored; NaN when nothing is left.
func median(xs []float64) float64 {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func minMax(xs []float64) (lo, hi float64) {
	lo, hi = math.NaN(), math.NaN()
	for _, x := range xs {
		if math.IsNaN(x) {
			continue
		}
		if math.IsNaN(lo) || x < lo {
			lo = x
		}
		if math.IsNaN(hi) || x > hi {
			hi = x
		}
	}
	return lo, hi
}
