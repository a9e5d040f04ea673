package autosnapshot

import (
	"context"
	"errors"
	"io"
	"sort"
	"time"
)

// Object is one stored snapshot.
type Object struct {
	Name     string    // the object's name under the schedule's path prefix
	Size     int64     // bytes
	Modified time.Time // as the store reports it
}

// ErrObjectNotFound is returned by Target.Get for a missing object.
var ErrObjectNotFound = errors.New("snapshot object not found")

// Target is where one schedule's snapshots are stored. Implementations are
// safe for concurrent use. Names are plain file names (no slash).
type Target interface {
	// Put stores body (size bytes, SHA-256 sum in hex) as name. An object
	// is either stored completely or not at all: readers never see a
	// partial one under name.
	Put(ctx context.Context, name string, body io.ReadSeeker, size int64, sum string) error
	// Get opens name; ErrObjectNotFound when it does not exist.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns every object whose name starts with prefix, in no
	// particular order.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes name; deleting a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// URL names an object for people and status reports
	// (file:///..., s3://bucket/key).
	URL(name string) string
}

// openTarget is the storage of a configuration (replaced in tests).
var openTarget = func(ctx context.Context, c *Config) (Target, error) {
	if c.StorageType == StorageS3 {
		return NewS3Target(ctx, c)
	}
	return NewLocalTarget(c)
}

// snapshots lists the schedule's snapshot objects in t, oldest first (by
// the time in their name).
func snapshots(ctx context.Context, t Target, c *Config) ([]Object, error) {
	all, err := t.List(ctx, c.FilePrefix+"-")
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, o := range all {
		if c.ours(o.Name) {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
