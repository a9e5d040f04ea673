package chain

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/vigilsec/vigil/audit/merkle"
)

// MaxLineBytes is the longest line the verifier accepts.
const MaxLineBytes = 64 << 20

const (
	recEntry uint8 = iota
	recSegment
	recCheckpoint
	recEvent
	recOther // a vigil.* type this version does not know: accepted as opaque
)

// lineRes is a worker's verdict on one line. Offsets point into the
// chunk's data.
type lineRes struct {
	seq              uint64
	off, end         int // the line, without its newline
	hash, prev, node int
	nodeLen          uint8
	rtype            uint8
	hashOK           bool
	noEOL            bool
	bad              string // malformed: why
	recErr           string // vigil.* record that does not parse
	sigErr           string // checkpoint signature problem (only with a key)
	computed         *[hashHexLen]byte
	seg              *SegmentHeader
	cp               *Checkpoint
	ev               *Event      // strict: a vigil.event's payload
	leaf             merkle.Hash // strict: the line's Merkle leaf hash
}

// chunk is a run of whole lines from one source. The reader fills data;
// a worker fills res and closes done; the checker consumes it in order.
type chunk struct {
	src         int
	data        []byte
	buf         []byte // backing buffer, recycled
	first, last bool
	tooLong     bool
	err         error
	res         []lineRes
	done        chan struct{}
}

func verify(ctx context.Context, sources []Source, opts VerifyOptions, stream bool) (*Report, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = 2 << 20
	}
	rep := &Report{}
	c := &checker{opts: opts, stream: stream, rep: rep, sources: sources,
		trusted: map[uint64]*Checkpoint{}, trustedOK: map[uint64]bool{}}
	if opts.Checkpoint != nil {
		cp := *opts.Checkpoint
		c.trusted[cp.Seq] = &cp
	}
	for i := range opts.Checkpoints {
		cp := opts.Checkpoints[i]
		if old := c.trusted[cp.Seq]; old != nil && old.Hash != cp.Hash {
			rep.Failure = &Failure{Kind: KindCheckpointMismatch, Seq: cp.Seq,
				Detail: fmt.Sprintf("two trusted checkpoints disagree on seq %d: %s%s and %s%s", cp.Seq, old.Hash, sourceOf(old), cp.Hash, sourceOf(&cp))}
			rep.OK = false
			return rep, nil
		}
		c.trusted[cp.Seq] = &cp
	}
	workerKey := opts.PublicKey
	if opts.Strict {
		headerKey := false
		if workerKey == nil && !stream && len(sources) > 0 {
			// The first header names the key: the workers can check
			// signatures in parallel; later headers must name the same.
			if k := peekHeaderKey(sources[0]); k != nil {
				workerKey, headerKey = k, true
			}
		}
		c.initStrict(workerKey, headerKey)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	inflight := opts.Workers * 3
	order := make(chan *chunk, inflight)
	jobs := make(chan *chunk, inflight)
	free := make(chan *chunk, inflight+2)
	var wg sync.WaitGroup
	wg.Add(1 + opts.Workers)
	go func() {
		defer wg.Done()
		readSources(ctx, sources, opts.ChunkBytes, order, jobs, free)
	}()
	for i := 0; i < opts.Workers; i++ {
		go func() {
			defer wg.Done()
			lh := newLineHasher()
			for ch := range jobs {
				checkChunk(ch, lh, workerKey, opts.Strict)
				close(ch.done)
			}
		}()
	}
	defer func() {
		cancel()
		for range order { // let the reader finish
		}
		wg.Wait()
	}()

	var lines int64
	srcLines := int64(0)
	for ch := range order {
		select {
		case <-ch.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if ch.err != nil {
			return nil, ch.err
		}
		if ch.first {
			c.src, c.lineNo, srcLines = ch.src, 0, 0
		}
		for i := range ch.res {
			if !c.line(ch, &ch.res[i]) {
				break
			}
		}
		if rep.Failure == nil && ch.tooLong {
			c.lineNo++
			c.fail(KindMalformed, c.lastSeq+1, "line longer than %d bytes", MaxLineBytes)
		}
		srcLines += int64(len(ch.res))
		lines += int64(len(ch.res))
		rep.Bytes += int64(len(ch.data))
		if rep.Failure == nil && ch.last {
			c.endSource(srcLines == 0)
		}
		if opts.Progress != nil {
			opts.Progress(rep.Bytes, lines)
		}
		if rep.Failure != nil {
			break
		}
		select {
		case free <- ch:
		default:
		}
	}
	if err := ctx.Err(); err != nil && rep.Failure == nil {
		return nil, err
	}
	c.finish()
	return rep, nil
}

// readSources reads each source in order and emits chunks of whole lines.
// It closes order and jobs when done.
func readSources(ctx context.Context, sources []Source, size int, order, jobs chan<- *chunk, free chan *chunk) {
	defer close(order)
	defer close(jobs)
	send := func(ch *chunk) bool {
		ch.done = make(chan struct{})
		select {
		case order <- ch:
		case <-ctx.Done():
			return false
		}
		select {
		case jobs <- ch:
			return true
		case <-ctx.Done():
			return false
		}
	}
	get := func(src int, need int) *chunk {
		var ch *chunk
		select {
		case ch = <-free:
		default:
			ch = &chunk{}
		}
		if cap(ch.buf) < need {
			ch.buf = make([]byte, need)
		}
		ch.buf = ch.buf[:cap(ch.buf)]
		ch.src, ch.data, ch.first, ch.last, ch.tooLong, ch.err, ch.res = src, nil, false, false, false, nil, ch.res[:0]
		return ch
	}
	var carry []byte
	for si, src := range sources {
		rc, err := src.Open()
		if err != nil {
			ch := get(si, 0)
			ch.err = fmt.Errorf("audit chain: verify: open %s: %w", src.Name, err)
			send(ch)
			return
		}
		carry = carry[:0]
		first := true
		for {
			ch := get(si, max(size, 2*len(carry)+size/2))
			n := copy(ch.buf, carry)
			m, rerr := io.ReadFull(rc, ch.buf[n:])
			filled := n + m
			ch.first = first
			first = false
			eof := errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF)
			if rerr != nil && !eof {
				ch.err = fmt.Errorf("audit chain: verify: read %s: %w", src.Name, rerr)
				send(ch)
				rc.Close()
				return
			}
			if eof {
				ch.data, ch.last = ch.buf[:filled], true
				if !send(ch) {
					rc.Close()
					return
				}
				break
			}
			i := bytes.LastIndexByte(ch.buf[:filled], '\n')
			if i < 0 { // a line longer than the buffer
				if filled >= MaxLineBytes {
					ch.data, ch.last, ch.tooLong = nil, true, true
					send(ch)
					rc.Close()
					return
				}
				carry = append(carry[:0], ch.buf[:filled]...)
				first = ch.first // nothing was sent: the next chunk is still the first
				select {
				case free <- ch:
				default:
				}
				continue
			}
			carry = append(carry[:0], ch.buf[i+1:filled]...)
			ch.data = ch.buf[:i+1]
			if !send(ch) {
				rc.Close()
				return
			}
		}
		rc.Close()
	}
}

// checkChunk parses and hashes every line of ch. A line's hash is computed
// from the prev_hash written in the line itself, so lines are independent
// and chunks can be hashed in parallel; the checker then confirms that
// each prev_hash equals the previous line's hash, which makes this exactly
// equivalent to hashing the chain sequentially.
func checkChunk(ch *chunk, lh *lineHasher, pub ed25519.PublicKey, strict bool) {
	data := ch.data
	res := ch.res[:0]
	var got [hashHexLen]byte
	for off := 0; off < len(data); {
		var r lineRes
		nl := bytes.IndexByte(data[off:], '\n')
		end, next := off+nl, off+nl+1
		if nl < 0 {
			end, next = len(data), len(data)
			r.noEOL = true
		}
		line := data[off:end]
		r.off, r.end = off, end
		f, err := parseChain(line)
		switch {
		case r.noEOL:
			r.bad = "line has no trailing newline"
		case err != nil:
			r.bad = err.Error()
		default:
			r.seq = f.Seq
			r.hash = off + (len(line) - 2 - hashHexLen)
			r.prev = off + (f.CanonEnd - 1 - hashHexLen)
			r.node = off + (f.CanonEnd - 1 - hashHexLen - len(memPrevHash) - len(f.NodeID))
			r.nodeLen = uint8(len(f.NodeID))
			lh.hash(got[:], f.PrevHash, line[:f.CanonEnd])
			r.hashOK = bytes.Equal(got[:], f.Hash)
			if !r.hashOK {
				g := got
				r.computed = &g
			} else if strict {
				r.leaf = merkle.LeafHash(lh.sum[:])
			}
			if bytes.HasPrefix(line, recordPrefix) {
				classifyRecord(&r, line, f, pub, strict)
			}
		}
		res = append(res, r)
		off = next
	}
	ch.res = res
}

func classifyRecord(r *lineRes, line []byte, f chainFields, pub ed25519.PublicKey, strict bool) {
	body := append(line[:f.BodyEnd:f.BodyEnd], '}')
	switch recordType(line) {
	case TypeSegment:
		r.rtype = recSegment
		h, err := parseSegmentBody(body)
		if err != nil {
			r.recErr = err.Error()
			return
		}
		r.seg = &h
	case TypeCheckpoint:
		r.rtype = recCheckpoint
		cp, err := parseCheckpointBody(body)
		if err != nil {
			r.recErr = err.Error()
			return
		}
		r.cp = &cp
		if pub != nil {
			if err := cp.Verify(pub); err != nil {
				r.sigErr = err.Error()
			}
		}
	case TypeEvent:
		r.rtype = recEvent
		if strict {
			ev, err := parseEventBody(body)
			if err != nil {
				r.recErr = err.Error()
				return
			}
			r.ev = &ev
		}
	default:
		r.rtype = recOther
	}
}

// peekHeaderKey returns the checkpoint key named by src's segment header,
// or nil.
func peekHeaderKey(src Source) ed25519.PublicKey {
	rc, err := src.Open()
	if err != nil {
		return nil
	}
	defer rc.Close()
	h, _, _, err := readHeader(rc)
	if err != nil || h.PublicKey == "" {
		return nil
	}
	k, err := decodeKey(h.PublicKey)
	if err != nil || KeyID(k) != h.KeyID {
		return nil
	}
	return k
}
