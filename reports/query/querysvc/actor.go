package querysvc

import (
	"context"
	"errors"

	"github.com/vigilsec/vigil/reports/query"
)

// EntityResolver maps an actor (an entity's name or id) to the entity ids
// its audit records may carry: the entity's own and those merged into it.
// *identity.Store implements it.
type EntityResolver interface {
	EntityIDs(actor string) []string
}

// resolvingBackend fills Filter.ActorEntityIDs from the identity store
// before every query, so that an actor filter naming a person finds them
// through every auth method they used and every entity merged into theirs
// (the identity store, not the log, knows which entities are one person).
type resolvingBackend struct {
	query.Backend
	r EntityResolver
}

func (b resolvingBackend) resolve(f query.Filter) query.Filter {
	if f.Actor != "" && len(f.ActorEntityIDs) == 0 {
		f.ActorEntityIDs = b.r.EntityIDs(f.Actor)
	}
	return f
}

// Query implements query.Backend.
func (b resolvingBackend) Query(ctx context.Context, f query.Filter) (*query.Result, error) {
	return b.Backend.Query(ctx, b.resolve(f))
}

// Scan implements query.Backend.
func (b resolvingBackend) Scan(ctx context.Context, f query.Filter, fn func(query.Record) error) (*query.CheckpointRef, error) {
	return b.Backend.Scan(ctx, b.resolve(f), fn)
}

// Coverage implements query.CoverageReporter when the backend does.
func (b resolvingBackend) Coverage(ctx context.Context) ([]query.NodeCoverage, error) {
	cr, ok := b.Backend.(query.CoverageReporter)
	if !ok {
		return nil, errNoCoverage
	}
	return cr.Coverage(ctx)
}

var errNoCoverage = errors.New("audit query: this backend cannot state its coverage")

var _ query.CoverageReporter = resolvingBackend{}
