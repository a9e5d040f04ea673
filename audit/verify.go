package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/vigilsec/vigil/audit/chain"
)

// SegmentStart reads the header of a segment file (plain or gzip): the seq
// and hash its first line continues from, and its index. A log whose
// oldest surviving segment has index > 1 lost earlier segments to retention.
func SegmentStart(path string) (index uint64, after chain.StartAfter, err error) {
	rc, err := chain.FileSource(path).Open()
	if err != nil {
		return 0, after, err
	}
	defer rc.Close()
	line, err := bufio.NewReaderSize(rc, 64<<10).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, after, err
	}
	var h struct {
		Type    string              `json:"type"`
		Segment chain.SegmentHeader `json:"segment"`
	}
	if err := json.Unmarshal(line, &h); err != nil || h.Type != chain.TypeSegment {
		return 0, after, fmt.Errorf("%s: first line is not a segment header", path)
	}
	return h.Segment.Index, chain.StartAfter{Seq: h.Segment.PrevSegmentLastSeq, Hash: h.Segment.PrevSegmentLastHash}, nil
}

// VerifyFileLog verifies the log whose active file is path strictly (see
// chain.VerifyOptions.Strict): every segment in chain order, signatures
// against pub, each of the trusted checkpoints, node ids against node.
// When the oldest segments were deleted, a covered segments_deleted record
// must say retention deleted them (Report.Anchor "retention").
func VerifyFileLog(ctx context.Context, path, node string, pub ed25519.PublicKey, trusted []chain.Checkpoint) (*chain.Report, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a rotation may rename files while listing
		infos, err := chain.ListSegments(path)
		if err != nil {
			lastErr = err
			continue
		}
		if len(infos) == 0 {
			return nil, fmt.Errorf("no segments found for %s", path)
		}
		paths := make([]string, len(infos))
		for i, si := range infos {
			paths[i] = si.Path
		}
		opts := chain.VerifyOptions{PublicKey: pub, Checkpoints: trusted, NodeID: node, Strict: true}
		rep, err := chain.Verify(ctx, chain.FileSources(paths), opts)
		if err != nil {
			lastErr = err
			continue
		}
		return rep, nil
	}
	return nil, lastErr
}
