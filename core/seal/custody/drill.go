package custody

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// Barrier paths of the drill records.
const (
	drillPrefix  = "core/key-custody/drills/"
	currentDrill = "core/key-custody/current-drill"
	// maxFailures bounds the failed submissions kept per drill (the audit
	// log has every one).
	maxFailures = 100
	// DefaultDrillTTL is how long a drill stays open unless finished.
	DefaultDrillTTL = 7 * 24 * time.Hour
	// DefaultWindow is the compliance window: the threshold of shares must
	// have been proven within it.
	DefaultWindow = 90 * 24 * time.Hour
)

// Sentinel errors; compare with errors.Is.
var (
	ErrNoDrill   = &core.Error{Code: core.CodeInvalid, Msg: "no key drill is open: start one with `vigil operator key-drill start`"}
	ErrDrillOpen = &core.Error{Code: core.CodeInvalid, Msg: "a key drill is already open: finish it first (vigil operator key-drill finish)"}
)

// Proof records that one share proved possession.
type Proof struct {
	Number     int       `json:"number"`
	Holder     string    `json:"holder,omitempty"`
	At         time.Time `json:"at"`
	RemoteAddr string    `json:"remote_addr,omitempty"`
}

// Failure records a submission that proved nothing.
type Failure struct {
	At         time.Time `json:"at"`
	Reason     string    `json:"reason"`
	RemoteAddr string    `json:"remote_addr,omitempty"`
}

// Drill is one key-custody drill.
type Drill struct {
	ID         string    `json:"id"`
	ShareSet   string    `json:"share_set"`
	Kind       string    `json:"kind"`
	Shares     int       `json:"shares"`
	Threshold  int       `json:"threshold"`
	StartedAt  time.Time `json:"started_at"`
	StartedBy  string    `json:"started_by,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Proofs     []Proof   `json:"proofs"`
	Failures   []Failure `json:"failures,omitempty"`
}

// Open reports whether the drill accepts submissions at now.
func (d *Drill) Open(now time.Time) bool { return d.FinishedAt.IsZero() && now.Before(d.ExpiresAt) }

// Drills keeps drill records in a barrier storage. Callers serialize
// writes (the server holds one lock around Start, Submit and Finish).
type Drills struct {
	St  storage.Storage
	Now func() time.Time
}

func (ds Drills) now() time.Time {
	if ds.Now == nil {
		return time.Now().UTC()
	}
	return ds.Now().UTC()
}

// Current returns the open drill, or ErrNoDrill.
func (ds Drills) Current(ctx context.Context) (*Drill, error) {
	raw, err := ds.St.Get(ctx, currentDrill)
	if err != nil {
		return nil, fmt.Errorf("custody: read current drill: %w", err)
	}
	if raw == nil {
		return nil, ErrNoDrill
	}
	d, err := ds.get(ctx, string(raw))
	if err != nil {
		return nil, err
	}
	if !d.Open(ds.now()) {
		return d, ErrNoDrill
	}
	return d, nil
}

func (ds Drills) get(ctx context.Context, id string) (*Drill, error) {
	var d Drill
	ok, err := storage.GetJSON(ctx, ds.St, drillPrefix+id, &d)
	if err != nil {
		return nil, fmt.Errorf("custody: read drill: %w", err)
	}
	if !ok {
		return nil, ErrNoDrill
	}
	return &d, nil
}

func (ds Drills) put(ctx context.Context, d *Drill) error {
	if err := storage.PutJSON(ctx, ds.St, drillPrefix+d.ID, d); err != nil {
		return fmt.Errorf("custody: store drill: %w", err)
	}
	return nil
}

// Start opens a drill over set for ttl (DefaultDrillTTL when 0).
func (ds Drills) Start(ctx context.Context, set *ShareSet, by string, ttl time.Duration) (*Drill, error) {
	if set == nil {
		return nil, ErrNoShareSet
	}
	if d, err := ds.Current(ctx); err == nil {
		return d, ErrDrillOpen
	} else if err != ErrNoDrill {
		return nil, err
	}
	if ttl <= 0 {
		ttl = DefaultDrillTTL
	}
	now := ds.now()
	d := &Drill{ID: newID(), ShareSet: set.ID, Kind: set.Kind, Shares: set.Shares, Threshold: set.Threshold,
		StartedAt: now, StartedBy: by, ExpiresAt: now.Add(ttl), Proofs: []Proof{}}
	if err := ds.put(ctx, d); err != nil {
		return nil, err
	}
	if err := ds.St.Put(ctx, currentDrill, []byte(d.ID)); err != nil {
		return nil, fmt.Errorf("custody: store current drill: %w", err)
	}
	return d, nil
}

// Submit verifies one share against set's commitments — never combining
// it with any other — and records the proof, or the failure (returned as
// ErrNoMatch). A share already proven in this drill is recorded once.
func (ds Drills) Submit(ctx context.Context, set *ShareSet, share []byte, remote string) (*Drill, Proof, error) {
	d, err := ds.Current(ctx)
	if err != nil {
		return nil, Proof{}, err
	}
	now := ds.now()
	if set == nil || set.ID != d.ShareSet {
		return d, Proof{}, core.Invalid("the key was rekeyed after this drill started: finish it and start a new one")
	}
	c, verr := set.Verify(share)
	if verr != nil {
		if len(d.Failures) < maxFailures {
			d.Failures = append(d.Failures, Failure{At: now, Reason: verr.Error(), RemoteAddr: remote})
		}
		if err := ds.put(ctx, d); err != nil {
			return nil, Proof{}, err
		}
		return d, Proof{}, verr
	}
	p := Proof{Number: c.Number, Holder: c.Holder, At: now, RemoteAddr: remote}
	for _, have := range d.Proofs {
		if have.Number == c.Number {
			return d, have, nil
		}
	}
	d.Proofs = append(d.Proofs, p)
	sort.Slice(d.Proofs, func(i, j int) bool { return d.Proofs[i].Number < d.Proofs[j].Number })
	return d, p, ds.put(ctx, d)
}

// Finish closes the open drill.
func (ds Drills) Finish(ctx context.Context) (*Drill, error) {
	d, err := ds.Current(ctx)
	if err != nil {
		return nil, err
	}
	d.FinishedAt = ds.now()
	if err := ds.put(ctx, d); err != nil {
		return nil, err
	}
	return d, ds.St.Delete(ctx, currentDrill)
}

// History returns every drill, newest first.
func (ds Drills) History(ctx context.Context) ([]*Drill, error) {
	keys, err := ds.St.List(ctx, drillPrefix)
	if err != nil {
		return nil, fmt.Errorf("custody: list drills: %w", err)
	}
	var out []*Drill
	for _, k := range keys {
		if strings.HasSuffix(k, "/") {
			continue
		}
		d, err := ds.get(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.After(out[j].StartedAt) })
	return out, nil
}

// Evidence is what the compliance check and the reports read: which shares
// of the current key were proven when, and the drill history.
type Evidence struct {
	ShareSet  string `json:"share_set"`
	Kind      string `json:"kind"`
	Shares    int    `json:"shares"`
	Threshold int    `json:"threshold"`
	// Latest is the latest proof of each share of the current key (no
	// entry: never proven).
	Latest []Proof   `json:"latest"`
	Drills []*Drill  `json:"drills"`
	Now    time.Time `json:"now"`
}

// ProvenWithin returns the shares of the current key proven within window
// before e.Now.
func (e *Evidence) ProvenWithin(window time.Duration) []Proof {
	var out []Proof
	for _, p := range e.Latest {
		if !p.At.Before(e.Now.Add(-window)) {
			out = append(out, p)
		}
	}
	return out
}

// Gather builds the evidence for the current share set (set may be nil:
// no commitments recorded).
func (ds Drills) Gather(ctx context.Context, set *ShareSet) (*Evidence, error) {
	drills, err := ds.History(ctx)
	if err != nil {
		return nil, err
	}
	e := &Evidence{Drills: drills, Now: ds.now(), Latest: []Proof{}}
	if set == nil {
		return e, nil
	}
	e.ShareSet, e.Kind, e.Shares, e.Threshold = set.ID, set.Kind, set.Shares, set.Threshold
	latest := map[int]Proof{}
	for _, d := range drills {
		if d.ShareSet != set.ID {
			continue
		}
		for _, p := range d.Proofs {
			if have, ok := latest[p.Number]; !ok || p.At.After(have.At) {
				latest[p.Number] = p
			}
		}
	}
	for _, p := range latest {
		e.Latest = append(e.Latest, p)
	}
	sort.Slice(e.Latest, func(i, j int) bool { return e.Latest[i].Number < e.Latest[j].Number })
	return e, nil
}
