package transit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// JobAutoRotate is the internal principal that rotates keys whose
// auto_rotate_period has elapsed.
const JobAutoRotate = "transit-auto-rotate"

// ScheduledJobs implements framework.Scheduler: key auto-rotation, done
// through the Internal routes below so each rotation is an audited request
// on the key's own path.
func (b *Backend) ScheduledJobs() []framework.Job {
	return []framework.Job{{Name: JobAutoRotate, Scan: "scheduled/auto-rotate"}}
}

// autoRotateScanRoute lists the keys due for rotation (reads only).
func (b *Backend) autoRotateScanRoute() framework.Route {
	return framework.Route{
		Pattern:    "scheduled/auto-rotate",
		Internal:   true,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.autoRotateScan},
		Help:       "Internal: the keys whose auto_rotate_period has elapsed.",
	}
}

// autoRotateKeyRoute rotates one key if its period has elapsed.
func (b *Backend) autoRotateKeyRoute() framework.Route {
	return framework.Route{
		Pattern:    "scheduled/auto-rotate/" + framework.GenericNameRegex("name"),
		Internal:   true,
		Fields:     map[string]*framework.FieldSchema{"name": {Type: framework.TypeString}},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.autoRotateKey},
		Help:       "Internal: rotate a key whose auto_rotate_period has elapsed.",
	}
}

// autoRotateScan answers {"due": ["scheduled/auto-rotate/<key>", ...]}: the
// keys whose latest version is older than their auto_rotate_period (by the
// engine clock).
func (b *Backend) autoRotateScan(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	names, err := st.storage.List(ctx, policyPrefix)
	if err != nil {
		return nil, fmt.Errorf("transit: list keys: %w", err)
	}
	due := []string{}
	now := st.now()
	for _, name := range names {
		if strings.HasSuffix(name, "/") {
			continue
		}
		p, err := b.load(ctx, st, name)
		if err != nil {
			return nil, err
		}
		if p != nil && rotationDue(p, now) {
			due = append(due, "scheduled/auto-rotate/"+name)
		}
	}
	return &core.Response{Data: map[string]any{"due": due}}, nil
}

// autoRotateKey rotates the named key if it is still due (a client may
// have rotated it since the scan). It answers {"rotated", "latest_version"}.
func (b *Backend) autoRotateKey(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	mu := b.lock(name)
	mu.Lock()
	defer mu.Unlock()
	p, err := b.loadFresh(ctx, st, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, core.Invalid("transit: no key named %q", name)
	}
	if p.Keys[p.LatestVersion] == nil {
		return nil, fmt.Errorf("transit: key %q: latest version %d is missing", name, p.LatestVersion)
	}
	now := st.now()
	if !rotationDue(p, now) {
		return &core.Response{Data: map[string]any{"rotated": false, "latest_version": p.LatestVersion}}, nil
	}
	if err := p.rotate(now, b.randReader()); err != nil {
		return nil, err
	}
	if err := b.store(ctx, st, p); err != nil {
		return nil, err
	}
	st.logger.Info("transit key rotated automatically", "key", name, "version", p.LatestVersion)
	return &core.Response{Data: map[string]any{"rotated": true, "latest_version": p.LatestVersion}}, nil
}

// rotationDue reports whether p's auto-rotation period has elapsed since
// its latest version was created.
func rotationDue(p *policy, now time.Time) bool {
	latest := p.Keys[p.LatestVersion]
	if p.AutoRotatePeriod <= 0 || latest == nil {
		return p.AutoRotatePeriod > 0 && latest == nil
	}
	return !now.Before(latest.CreationTime.Add(time.Duration(p.AutoRotatePeriod) * time.Second))
}
