package querytest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/vault"
	"github.com/vigilsec/vigil/audit/hmac"
)

// GenerateOptions tune GenerateLog.
type GenerateOptions struct {
	Requests  int           // audited requests (each one or two entries)
	Start     time.Time     // time of the first request
	Span      time.Duration // the requests are spread evenly over this
	NodeID    string        // default "bench-node"
	MaxSizeMB int           // segment size (default 256)
	Writers   int           // concurrent appenders (default 32)
	// Progress, if set, is called every million requests.
	Progress func(done int)
}

// idTemplate and timeTemplate are placeholders GenerateLog formats
// templates with, then overwrites in place (same width).
const (
	idTemplate = "ffffffff-ffff-4fff-bfff-ffffffffffff"
)

var timeTemplate = time.Date(2099, 12, 31, 23, 59, 59, 999999999, time.UTC)

type tmpl struct {
	req, resp         []byte
	reqID, respID     int // offsets of the id in each body
	reqTime, respTime int // offsets of the time
}

// GenerateLog writes a large realistic chain quickly: entries are rendered
// by the real Vault formatter (audit/format/vault, salted HMAC) from a pool
// of Traffic templates, then each request gets its own id and time by
// overwriting those fixed-width fields, and everything is appended through
// the real chain writer (audit/chain: hashes, signed checkpoints every
// 1000 lines, rotation) with fsync off. Record order follows seq with the
// small time inversions concurrent appenders produce, as in production.
// It returns the log's path and the checkpoint key.
func GenerateLog(dir string, o GenerateOptions) (path string, pub ed25519.PublicKey, salt *hmac.Salt, err error) {
	if o.NodeID == "" {
		o.NodeID = "bench-node"
	}
	if o.MaxSizeMB == 0 {
		o.MaxSizeMB = 256
	}
	if o.Writers == 0 {
		o.Writers = 32
	}
	if o.Span == 0 {
		o.Span = 30 * 24 * time.Hour
	}
	salt, err = hmac.New([]byte("querytest-salt-0123456789abcdef!"))
	if err != nil {
		return "", nil, nil, err
	}
	fo := vault.Options{Salt: salt, HMACAccessor: true}
	var tmpls []tmpl
	for _, r := range Traffic(99, 512, o.Start, time.Second) {
		if r.Resp == nil || r.Req.Sealed {
			continue // keep every generated request complete
		}
		r.Req.Request.ID = idTemplate
		req, resp := *r.Req, *r.Resp
		req.Time, resp.Time = timeTemplate, timeTemplate
		rb, err1 := vault.Format(&req, fo)
		pb, err2 := vault.Format(&resp, fo)
		if err1 != nil || err2 != nil {
			return "", nil, nil, fmt.Errorf("format: %v %v", err1, err2)
		}
		t := tmpl{req: rb, resp: pb}
		ts := []byte(timeTemplate.Format(time.RFC3339Nano))
		t.reqID, t.respID = bytes.Index(rb, []byte(idTemplate)), bytes.Index(pb, []byte(idTemplate))
		t.reqTime, t.respTime = bytes.Index(rb, ts), bytes.Index(pb, ts)
		if t.reqID < 0 || t.respID < 0 || t.reqTime < 0 || t.respTime < 0 {
			return "", nil, nil, fmt.Errorf("template fields not found")
		}
		tmpls = append(tmpls, t)
	}
	key := ed25519.NewKeyFromSeed(KeySeed)
	path = filepath.Join(dir, "audit.log")
	w, err := chain.Open(chain.Config{Path: path, NodeID: o.NodeID, Fsync: chain.FsyncNone, MaxSizeMB: o.MaxSizeMB, Signer: key,
		CheckpointEvery: 1000, CheckpointInterval: -1, WatchInterval: -1, WriteTimeout: time.Hour, QueueSize: 65536,
		Now: func() time.Time { return o.Start }})
	if err != nil {
		return "", nil, nil, err
	}
	step := o.Span / time.Duration(max(o.Requests, 1))
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for g := 0; g < o.Writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rb, pb []byte
			for {
				i := int(next.Add(1)) - 1
				if i >= o.Requests {
					return
				}
				t := &tmpls[i%len(tmpls)]
				at := o.Start.Add(time.Duration(i) * step)
				rb = append(rb[:0], t.req...)
				pb = append(pb[:0], t.resp...)
				id := fmt.Sprintf("%08x-%04x-4000-8000-%012x", uint32(i), uint16(i>>32), i)
				copy(rb[t.reqID:], id)
				copy(pb[t.respID:], id)
				copy(rb[t.reqTime:], fixedTime(at))
				copy(pb[t.respTime:], fixedTime(at.Add(time.Millisecond)))
				if _, err := w.Append(context.Background(), rb); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if _, err := w.Append(context.Background(), pb); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if o.Progress != nil && (i+1)%1000000 == 0 {
					o.Progress(i + 1)
				}
			}
		}()
	}
	wg.Wait()
	if _, err := w.Checkpoint(); err != nil {
		return "", nil, nil, err
	}
	if err := w.Close(); err != nil {
		return "", nil, nil, err
	}
	if e := firstErr.Load(); e != nil {
		return "", nil, nil, e.(error)
	}
	return path, key.Public().(ed25519.PublicKey), salt, nil
}

// fixedTime formats t like RFC3339Nano in UTC but always with nine
// fractional digits (t's last digit is made non-zero so both forms agree).
func fixedTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()%10 == 0 {
		t = t.Add(time.Nanosecond)
	}
	return t.Format("2006-01-02T15:04:05.000000000Z")
}
