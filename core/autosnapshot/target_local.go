package autosnapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilsec/vigil/core"
)

// LocalTarget stores snapshots as files in a folder on this node.
type LocalTarget struct {
	dir      string
	maxSpace int64
}

var _ Target = (*LocalTarget)(nil)

// NewLocalTarget returns the folder target of c (storage_type=local).
func NewLocalTarget(c *Config) (*LocalTarget, error) {
	if !filepath.IsAbs(c.PathPrefix) {
		return nil, core.Invalid("snapshot-auto: path_prefix %q is not an absolute path", c.PathPrefix)
	}
	return &LocalTarget{dir: filepath.Clean(c.PathPrefix), maxSpace: c.LocalMaxSpace}, nil
}

func (t *LocalTarget) path(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", fmt.Errorf("snapshot-auto: invalid object name %q", name)
	}
	return filepath.Join(t.dir, name), nil
}

// Put writes a temporary file in the folder, fsyncs it, renames it to
// name and fsyncs the folder. With local_max_space set it refuses an
// object that would take the folder's snapshots past the bound.
func (t *LocalTarget) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, _ string) (err error) {
	p, err := t.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return fmt.Errorf("snapshot-auto: create %s: %w", t.dir, err)
	}
	if t.maxSpace > 0 {
		objs, err := t.List(ctx, "")
		if err != nil {
			return err
		}
		used := size
		for _, o := range objs {
			if strings.HasSuffix(o.Name, ".snap") {
				used += o.Size
			}
		}
		if used > t.maxSpace {
			return fmt.Errorf("snapshot-auto: local_max_space: %d bytes of snapshots would exceed %d", used, t.maxSpace)
		}
	}
	tmp, err := os.CreateTemp(t.dir, ".upload-*")
	if err != nil {
		return fmt.Errorf("snapshot-auto: %w", err)
	}
	defer func() {
		_ = tmp.Close()
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, ctxReader{ctx, body}); err != nil {
		return fmt.Errorf("snapshot-auto: write %s: %w", p, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("snapshot-auto: fsync %s: %w", p, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("snapshot-auto: close %s: %w", p, err)
	}
	if err = os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("snapshot-auto: %w", err)
	}
	syncDir(t.dir)
	return nil
}

// Get opens the file.
func (t *LocalTarget) Get(_ context.Context, name string) (io.ReadCloser, error) {
	p, err := t.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrObjectNotFound
	}
	return f, err
}

// List lists regular files starting with prefix (a missing folder is empty).
func (t *LocalTarget) List(_ context.Context, prefix string) ([]Object, error) {
	ents, err := os.ReadDir(t.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot-auto: list %s: %w", t.dir, err)
	}
	var out []Object
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, Object{Name: e.Name(), Size: fi.Size(), Modified: fi.ModTime().UTC()})
	}
	return out, nil
}

// Delete removes the file.
func (t *LocalTarget) Delete(_ context.Context, name string) error {
	p, err := t.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshot-auto: %w", err)
	}
	syncDir(t.dir)
	return nil
}

// URL is a file:// URL.
func (t *LocalTarget) URL(name string) string {
	return (&url.URL{Scheme: "file", Path: filepath.Join(t.dir, name)}).String()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
