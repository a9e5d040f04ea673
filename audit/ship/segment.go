package ship

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/logline"
)

// Segment is a log segment opened for reading.
type Segment struct {
	Info chain.SegmentInfo
	RC   io.ReadCloser // what to read: the file, or a gzip reader over it
	File *os.File      // the plain file (nil when compressed)
}

// OpenSegment lists path's segments and opens the one to read next: with
// wantIndex != 0 the first whose index is at least wantIndex, otherwise
// the last whose first seq is at most next (the first segment when next is
// 0 or none is). An active segment is checked to still start with its
// listed first seq (the writer may rotate between listing and opening).
// ok is false when there is nothing to open yet: no segment, none at
// wantIndex, or a file renamed, compressed or rotated meanwhile (list
// again later). The caller compares Info.FirstSeq with next for gaps.
// With wantIndex != 0 it may return a later segment than wantIndex when
// that one is missing; the Tailer does not use it to follow the chain for
// that reason (see Tailer.following).
func OpenSegment(path string, wantIndex, next uint64) (seg *Segment, ok bool, err error) {
	infos, err := chain.ListSegments(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil // a file vanished while listing (compression)
		}
		return nil, false, fmt.Errorf("list segments of %s: %w", path, err)
	}
	if len(infos) == 0 {
		return nil, false, nil
	}
	var pick *chain.SegmentInfo
	if wantIndex != 0 {
		for i := range infos {
			if infos[i].Index >= wantIndex {
				pick = &infos[i]
				break
			}
		}
		if pick == nil {
			return nil, false, nil // the next segment is not there yet
		}
	} else {
		pick = &infos[0]
		for i := range infos {
			if next != 0 && infos[i].FirstSeq <= next {
				pick = &infos[i]
			}
		}
	}
	return openInfo(*pick)
}

// openInfo opens the listed segment info. ok is false when the file was
// renamed, compressed or rotated since it was listed (list again later).
func openInfo(info chain.SegmentInfo) (seg *Segment, ok bool, err error) {
	s := &Segment{Info: info}
	if info.Compressed {
		s.RC, err = chain.FileSource(info.Path).Open()
	} else {
		s.File, err = os.Open(info.Path)
		s.RC = s.File
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("open %s: %w", info.Path, err)
	}
	if info.Active {
		if ok, err := startsAt(s.File, info.FirstSeq); err != nil || !ok {
			_ = s.File.Close()
			return nil, false, err
		}
	}
	return s, true, nil
}

// startsAt reports whether the file's first line has seq first.
func startsAt(f *os.File, first uint64) (bool, error) {
	buf := make([]byte, 4096)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	i := bytes.IndexByte(buf[:n], '\n')
	if i < 0 {
		return false, nil
	}
	m, err := logline.ScanMembers(buf[:i])
	return err == nil && m.Seq == first, nil
}
