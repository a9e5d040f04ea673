package chain

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
)

func (w *Writer) wakeCompressor() {
	if !w.cfg.Compress {
		return
	}
	select {
	case w.compressWake <- struct{}{}:
	default:
	}
}

// compressLoop gzips rotated segments, fsyncing each .gz (and the
// directory) before the original is removed, so a crash never loses a
// rotated segment.
func (w *Writer) compressLoop() {
	defer w.bg.Done()
	for {
		select {
		case <-w.compressWake:
		case <-w.stopBg:
			return
		}
		files, err := listSegmentFiles(w.cfg.Path)
		if err != nil {
			w.log.Error("audit chain: compression: list segments", "err", err)
			continue
		}
		for _, sf := range files {
			if sf.active || sf.compressed || sf.vanished {
				continue
			}
			select {
			case <-w.stopBg:
				return
			default:
			}
			err := compressSegment(sf.path)
			w.statsMu.Lock()
			if err != nil {
				w.stats.CompressFailures++
			} else {
				w.stats.Compressed++
			}
			w.statsMu.Unlock()
			if err != nil {
				w.log.Error("audit chain: compress rotated segment", "path", sf.path, "err", err)
			}
		}
	}
}

// compressSegment replaces src by src.gz: gzip into src.gz.tmp, fsync,
// rename to src.gz, fsync the directory, remove src, fsync the directory.
// At every point a crash leaves src, src.gz or both complete.
func compressSegment(src string) error {
	dst := src + ".gz"
	tmp := dst + ".tmp"
	dir := filepath.Dir(src)
	if _, err := os.Stat(dst); err == nil {
		// A previous run got as far as the rename.
		if err := os.Remove(src); err != nil {
			return err
		}
		return syncDir(dir)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := os.Remove(src); err != nil {
		return err
	}
	return syncDir(dir)
}
