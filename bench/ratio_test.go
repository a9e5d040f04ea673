package bench

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestComparePairsRoundByRound(t *testing.T) {
	// Baseline A and arm B alternate A/B/A/B over three rounds; the
	// machine drifts (round 3 is slower for both).
	samples := []Sample{
		{Scenario: "kv-read", Arm: "B", Round: 3, Throughput: 1500, P99Ms: 6},
		{Scenario: "kv-read", Arm: "A", Round: 1, Throughput: 1000, P99Ms: 10},
		{Scenario: "kv-read", Arm: "B", Round: 1, Throughput: 2000, P99Ms: 5},
		{Scenario: "kv-read", Arm: "A", Round: 2, Throughput: 1100, P99Ms: 10},
		{Scenario: "kv-read", Arm: "B", Round: 2, Throughput: 2420, P99Ms: 4},
		{Scenario: "kv-read", Arm: "A", Round: 3, Throughput: 500, P99Ms: 20},
	}
	cs := Compare(samples, "A")
	if len(cs) != 1 {
		t.Fatalf("want 1 comparison, got %d", len(cs))
	}
	c := cs[0]
	if c.Scenario != "kv-read" || c.Arm != "B" || c.Baseline != "A" {
		t.Fatalf("comparison = %+v", c)
	}
	wantT := []float64{2.0, 2.2, 3.0} // per round: 2000/1000, 2420/1100, 1500/500
	wantP := []float64{0.5, 0.4, 0.3}
	if len(c.Pairs) != 3 {
		t.Fatalf("pairs = %+v", c.Pairs)
	}
	for i, p := range c.Pairs {
		if p.Round != i+1 || !near(float64(p.ThroughputRatio), wantT[i]) || !near(float64(p.P99Ratio), wantP[i]) {
			t.Errorf("pair %d = %+v, want round %d ratio %v p99 ratio %v", i, p, i+1, wantT[i], wantP[i])
		}
	}
	// Median of the pairs, not a ratio of pooled sums (which would be
	// 5920/2600 = 2.277).
	if !near(float64(c.MedianThroughputRatio), 2.2) || !near(float64(c.MinThroughputRatio), 2.0) || !near(float64(c.MaxThroughputRatio), 3.0) {
		t.Errorf("median/min/max = %v/%v/%v, want 2.2/2/3", c.MedianThroughputRatio, c.MinThroughputRatio, c.MaxThroughputRatio)
	}
	if !near(float64(c.MedianP99Ratio), 0.4) {
		t.Errorf("median p99 ratio = %v, want 0.4", c.MedianP99Ratio)
	}
}

func TestCompareSkipsUnpairedRoundsAndScenarios(t *testing.T) {
	samples := []Sample{
		{Scenario: "s1", Arm: "base", Round: 1, Throughput: 100},
		{Scenario: "s1", Arm: "x", Round: 1, Throughput: 150},
		{Scenario: "s1", Arm: "x", Round: 2, Throughput: 999}, // baseline round 2 missing
		{Scenario: "s1", Arm: "base", Round: 3, Throughput: 100},
		{Scenario: "s1", Arm: "x", Round: 3, Throughput: 50},
		{Scenario: "s1", Arm: "y", Round: 1, Throughput: 300},
		{Scenario: "s2", Arm: "x", Round: 1, Throughput: 10}, // no baseline at all
	}
	cs := Compare(samples, "base")
	if len(cs) != 2 {
		t.Fatalf("want comparisons for s1/x and s1/y only, got %+v", cs)
	}
	x := cs[0]
	if x.Arm != "x" || len(x.Pairs) != 2 || x.Pairs[0].Round != 1 || x.Pairs[1].Round != 3 {
		t.Fatalf("s1/x pairs = %+v", x.Pairs)
	}
	if !near(float64(x.MedianThroughputRatio), 1.0) { // (1.5 + 0.5) / 2
		t.Errorf("even count median = %v, want 1.0", x.MedianThroughputRatio)
	}
	if cs[1].Arm != "y" || !near(float64(cs[1].MedianThroughputRatio), 3) {
		t.Errorf("s1/y = %+v", cs[1])
	}
}

func TestCompareZeroBaselineIsNotANumber(t *testing.T) {
	cs := Compare([]Sample{
		{Scenario: "s", Arm: "base", Round: 1, Throughput: 0, P99Ms: 0},
		{Scenario: "s", Arm: "x", Round: 1, Throughput: 10, P99Ms: 1},
	}, "base")
	if len(cs) != 1 || !math.IsNaN(float64(cs[0].Pairs[0].ThroughputRatio)) || !math.IsNaN(float64(cs[0].MedianThroughputRatio)) {
		t.Fatalf("ratio against a zero baseline must be n/a: %+v", cs)
	}
	b, err := json.Marshal(cs)
	if err != nil {
		t.Fatalf("NaN must encode: %v", err)
	}
	if !strings.Contains(string(b), `"throughput_ratio":null`) {
		t.Errorf("NaN should encode as null: %s", b)
	}
}
