package chain

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	Path       string
	Index      uint64    // segment index from the header
	FirstSeq   uint64    // seq of the header line
	LastSeq    uint64    // seq of the last line; 0 if not known
	LastHash   string    // hash of the last line; "" if not known
	Created    time.Time // from the header
	Reason     string    // from the header
	Size       int64     // on-disk size (compressed size for .gz)
	Compressed bool
	Active     bool
	// Header is the segment's header record.
	Header SegmentHeader
}

// Segments lists the active segment and every rotated one (plain or .gz)
// in chain order (by header index). LastSeq/LastHash of a rotated segment
// come from the next segment's header; for the active segment they are the
// writer's durable head. The last rotated segment before a gap (a deleted
// file) has LastSeq 0. Safe to call concurrently with appends; files that
// disappear while listing (compression, retention) are retried.
func (w *Writer) Segments() ([]SegmentInfo, error) {
	seq, hash := w.Head()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		infos, err := segmentInfos(w.cfg.Path)
		if err != nil {
			lastErr = err
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		for i := range infos {
			if infos[i].Active {
				infos[i].LastSeq, infos[i].LastHash = seq, hash
			}
		}
		return infos, nil
	}
	return nil, lastErr
}

// ListSegments is Segments for a log that no writer has open: LastSeq and
// LastHash of the active segment are left 0 and "".
func ListSegments(path string) ([]SegmentInfo, error) { return segmentInfos(filepath.Clean(path)) }

// listAttempts bounds how often segmentInfos lists the directory again
// when a file vanishes between the directory read and opening it.
const listAttempts = 10

func segmentInfos(path string) ([]SegmentInfo, error) {
	var err error
	for attempt := 0; attempt < listAttempts; attempt++ {
		var infos []SegmentInfo
		if infos, err = segmentInfosOnce(path); err == nil {
			return infos, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// segmentInfosOnce lists the segments once. A listed file that is gone by
// the time it is opened (rotated away, or compressed and removed, after the
// directory was read) fails the listing with an error wrapping
// fs.ErrNotExist instead of being left out: a listing never silently
// omits a segment.
func segmentInfosOnce(path string) ([]SegmentInfo, error) {
	files, err := listSegmentFiles(path)
	if err != nil {
		return nil, err
	}
	infos := make([]SegmentInfo, 0, len(files))
	for _, sf := range files {
		if sf.vanished {
			return nil, fmt.Errorf("audit chain: segment %s vanished while listing: %w", sf.path, fs.ErrNotExist)
		}
		rc, err := openSegment(sf.path)
		if err != nil {
			return nil, err
		}
		h, seq, _, err := readHeader(rc)
		rc.Close()
		if err != nil {
			if sf.active && errors.Is(err, io.EOF) {
				continue // a brand-new active file before its header is written
			}
			return nil, fmt.Errorf("audit chain: segment %s: %w", sf.path, err)
		}
		infos = append(infos, SegmentInfo{Path: sf.path, Index: h.Index, FirstSeq: seq, Created: h.Created,
			Reason: h.Reason, Size: sf.size, Compressed: sf.compressed, Active: sf.active, Header: h})
	}
	sort.SliceStable(infos, func(i, j int) bool {
		if infos[i].Index != infos[j].Index {
			return infos[i].Index < infos[j].Index
		}
		return infos[i].FirstSeq < infos[j].FirstSeq
	})
	// A rotated segment ends where the next one's header says it does.
	for i := 0; i+1 < len(infos); i++ {
		if infos[i+1].Index == infos[i].Index+1 {
			rc, err := openSegment(infos[i+1].Path)
			if err != nil {
				continue
			}
			h, _, _, err := readHeader(rc)
			rc.Close()
			if err == nil {
				infos[i].LastSeq, infos[i].LastHash = h.PrevSegmentLastSeq, h.PrevSegmentLastHash
			}
		}
	}
	return infos, nil
}

// OrderSegments returns paths sorted into chain order by the index (then
// first seq) in each file's segment header. Plain and .gz files are
// accepted. It fails if a file has no readable header.
func OrderSegments(paths []string) ([]string, error) {
	type item struct {
		path       string
		index, seq uint64
	}
	items := make([]item, 0, len(paths))
	for _, p := range paths {
		rc, err := openSegment(p)
		if err != nil {
			return nil, err
		}
		h, seq, _, err := readHeader(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("audit chain: %s: %w", p, err)
		}
		items = append(items, item{p, h.Index, seq})
	}
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].index != items[j].index {
			return items[i].index < items[j].index
		}
		return items[i].seq < items[j].seq
	})
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.path
	}
	return out, nil
}

type segFile struct {
	path       string
	size       int64
	active     bool
	compressed bool
	// vanished: the directory listed the file, but it was gone when
	// stat'ed (and, for a rotated segment, no .gz had replaced it).
	vanished bool
}

// afterReadDir, when set (tests only), runs between the directory read
// and the stat of its entries in listSegmentFiles, to force a rotation or
// compression into that window.
var afterReadDir func()

// listSegmentFiles returns the active file (if present) and the rotated
// segments next to it. When both x and x.gz exist (compression interrupted
// after the rename), x is listed. The directory read and the stat of each
// entry are not atomic: a rotated x whose stat finds it gone was compressed
// meanwhile (the compressor removes x only after x.gz is complete and
// durable) and x.gz is listed in its place; a file gone without such a
// replacement is returned with vanished set, for callers that must not
// miss a segment (segmentInfos lists again).
func listSegmentFiles(path string) ([]segFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ext := filepath.Ext(base)
	prefix := base[:len(base)-len(ext)] + "-"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	if afterReadDir != nil {
		afterReadDir()
	}
	plain := map[string]bool{}
	var out []segFile
	add := func(name string, active, gz bool) {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && !active && !gz {
			if zfi, zerr := os.Stat(p + ".gz"); zerr == nil && zfi.Mode().IsRegular() {
				out = append(out, segFile{path: p + ".gz", size: zfi.Size(), compressed: true})
				return
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			out = append(out, segFile{path: p, active: active, compressed: gz, vanished: true})
			return
		}
		if err != nil || !fi.Mode().IsRegular() {
			return
		}
		out = append(out, segFile{path: p, size: fi.Size(), active: active, compressed: gz})
	}
	var gzs []string
	for _, e := range ents {
		name := e.Name()
		switch {
		case name == base:
			add(name, true, false)
		case isBackupName(name, prefix, ext):
			plain[name] = true
			add(name, false, false)
		case strings.HasSuffix(name, ".gz") && isBackupName(strings.TrimSuffix(name, ".gz"), prefix, ext):
			gzs = append(gzs, name)
		}
	}
	for _, name := range gzs {
		if !plain[strings.TrimSuffix(name, ".gz")] {
			add(name, false, true)
		}
	}
	return out, nil
}

func isBackupName(name, prefix, ext string) bool {
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ext) || len(name) < len(prefix)+len(ext) {
		return false
	}
	_, err := time.Parse(backupTimeFormat, name[len(prefix):len(name)-len(ext)])
	return err == nil
}

// openSegment opens a segment file for reading, transparently gunzipping
// it when it starts with the gzip magic bytes.
func openSegment(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	}
	return readCloser{br, f.Close}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// maxHeaderLine bounds the header line length accepted by readHeader.
const maxHeaderLine = 64 << 10

// readHeader reads and validates the first line of a segment: a vigil.segment
// record with intact chain members. It returns the header, the line's seq
// and the line length including its newline. A file with no complete first
// line returns an error wrapping io.EOF.
func readHeader(r io.Reader) (SegmentHeader, uint64, int, error) {
	br := bufio.NewReaderSize(r, 4096)
	line, err := br.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) && len(line) < maxHeaderLine {
		var more []byte
		more, err = br.ReadSlice('\n')
		line = append(bytes.Clone(line), more...)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return SegmentHeader{}, 0, 0, fmt.Errorf("no complete header line: %w", io.EOF)
		}
		return SegmentHeader{}, 0, 0, err
	}
	n := len(line)
	line = line[:n-1]
	f, err := parseChain(line)
	if err != nil {
		return SegmentHeader{}, 0, 0, fmt.Errorf("header line: %v", err)
	}
	if recordType(line) != TypeSegment {
		return SegmentHeader{}, 0, 0, errors.New("first line is not a vigil.segment header")
	}
	h, err := parseSegmentBody(append(line[:f.BodyEnd:f.BodyEnd], '}'))
	if err != nil {
		return SegmentHeader{}, 0, 0, err
	}
	return h, f.Seq, n, nil
}

// ReadSegmentHeader returns the header of the segment file at path (plain
// or gzip). A file that does not start with an intact vigil.segment
// header is not a segment: the error says why.
func ReadSegmentHeader(path string) (SegmentHeader, error) { return readHeaderFile(path) }

func readHeaderFile(path string) (SegmentHeader, error) {
	rc, err := openSegment(path)
	if err != nil {
		return SegmentHeader{}, err
	}
	defer rc.Close()
	h, _, _, err := readHeader(rc)
	return h, err
}
