package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"
)

// ZeroHash is the prev_hash of the first line of a brand-new chain (the
// genesis rule): 64 ASCII zeros.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Record types written by the chain itself. Vault-format parsers ignore
// unknown "type" values, and Append refuses bodies whose top-level "type"
// starts with "vigil.".
const (
	TypeSegment    = "vigil.segment"
	TypeCheckpoint = "vigil.checkpoint"
	TypeEvent      = "vigil.event"
)

// recordPrefix is the exact byte prefix of every line the chain writes
// itself. A line is a chain record if and only if it starts with it.
var recordPrefix = []byte(`{"type":"vigil.`)

// Fixed member spellings. The chain members always appear last, in this
// order, with no whitespace: ,"seq":N,"node_id":"ID","prev_hash":"H","hash":"H"}
const (
	memSeq      = `"seq":`
	memNodeID   = `,"node_id":"`
	memPrevHash = `","prev_hash":"`
	memHash     = `,"hash":"`
	hashHexLen  = 64
	maxNodeID   = 128
	// lineTail is the length of `,"hash":"<64 hex>"}`.
	lineTail = len(memHash) + hashHexLen + 2
)

// ValidNodeID reports whether id may be used as a node id: 1 to 128 bytes
// from [A-Za-z0-9._:-]. The restricted alphabet means a node id never needs
// JSON escaping and never contains a quote, which keeps the line format
// parseable from the end.
func ValidNodeID(id string) bool {
	if len(id) == 0 || len(id) > maxNodeID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !nodeIDByte(id[i]) {
			return false
		}
	}
	return true
}

func nodeIDByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '-'
}

// lineHasher computes line hashes. It is not safe for concurrent use; each
// goroutine owns one.
type lineHasher struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

func newLineHasher() *lineHasher { return &lineHasher{h: sha256.New()} }

// hash returns hex(SHA-256(prevHex || canon || "}")) into dst (64 bytes).
// canon is the canonical bytes without their final closing brace.
func (lh *lineHasher) hash(dst []byte, prevHex, canonNoBrace []byte) {
	lh.h.Reset()
	lh.h.Write(prevHex)
	lh.h.Write(canonNoBrace)
	lh.h.Write(closeBrace)
	hex.Encode(dst, lh.h.Sum(lh.sum[:0]))
}

var closeBrace = []byte{'}'}

// hashTail is the length of a line's last member and closing brace:
// ,"hash":"<64 hex>"}
const hashTail = len(`,"hash":"`) + 64 + 2

// LineHashOK reports whether hash = SHA-256(prevHex || canonical bytes of
// line), the line's own integrity (docs/audit-format.md section 4). line
// is a whole chain line without its newline whose members have been found
// (its last member is "hash"); prevHex is its prev_hash, hash its hash.
func LineHashOK(line, prevHex, hash []byte) bool {
	if len(line) < hashTail {
		return false
	}
	var got [64]byte
	newLineHasher().hash(got[:], prevHex, line[:len(line)-hashTail])
	return bytes.Equal(got[:], hash)
}

// appendLine appends the complete line for body (a validated JSON object)
// at seq, chained to prevHex, to dst, and returns the extended slice and the
// new line's hash (64 lowercase hex bytes, written into hashOut).
//
// The canonical bytes are built in place: body without its closing brace,
// the chain members up to prev_hash, and "}". The hash is then computed over
// prevHex || canonical, the closing brace is replaced by the hash member,
// and the line is terminated with "}\n".
func appendLine(dst, body []byte, seq uint64, nodeID string, prevHex []byte, lh *lineHasher, hashOut []byte) []byte {
	start := len(dst)
	if emptyObject(body) { // "{}" and "{ }" both become `{"seq":...`
		dst = append(dst, '{')
	} else {
		dst = append(dst, body[:len(body)-1]...)
		dst = append(dst, ',')
	}
	dst = append(dst, memSeq...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, memNodeID...)
	dst = append(dst, nodeID...)
	dst = append(dst, memPrevHash...)
	dst = append(dst, prevHex...)
	dst = append(dst, '"')
	lh.hash(hashOut, prevHex, dst[start:])
	dst = append(dst, memHash...)
	dst = append(dst, hashOut...)
	dst = append(dst, '"', '}', '\n')
	return dst
}

// emptyObject reports whether body (which starts with '{' and ends with '}')
// has only whitespace between its braces.
func emptyObject(body []byte) bool {
	return len(bytes.TrimSpace(body[1:len(body)-1])) == 0
}

// chainFields locates the chain members of one line (without its '\n').
// All slices alias the line.
type chainFields struct {
	Seq      uint64
	NodeID   []byte
	PrevHash []byte
	Hash     []byte
	// CanonEnd is the offset of `,"hash":"`: the canonical bytes are
	// line[:CanonEnd] followed by "}".
	CanonEnd int
	// BodyEnd is the offset where the body's members end (the ',' before
	// "seq", or 1 for an empty body): the body is line[:BodyEnd] + "}".
	BodyEnd int
}

// parseChain parses the chain members of line from its end, without
// decoding the body. It accepts exactly the member spelling appendLine
// writes: a decimal seq >= 1 without leading zeros, a node id from the
// ValidNodeID alphabet, 64-byte hash values, and no whitespace. It does not
// check that the hash values are lowercase hex: callers compare hash with
// the computed (lowercase hex) value and prev_hash with the previous line's
// hash, which implies it, and check it themselves where nothing is compared
// (the first line of a partial log).
func parseChain(line []byte) (chainFields, error) {
	var f chainFields
	n := len(line)
	const minLen = len(`{"seq":1,"node_id":"a","prev_hash":"`) + hashHexLen + 1 + lineTail
	if n < minLen || line[0] != '{' {
		return f, errShort
	}
	if line[n-1] != '}' || line[n-2] != '"' {
		return f, errNoHash
	}
	f.Hash = line[n-2-hashHexLen : n-2]
	f.CanonEnd = n - lineTail
	if string(line[f.CanonEnd:f.CanonEnd+len(memHash)]) != memHash {
		return f, errNoHash
	}
	// ...","prev_hash":"<64>"  ending at CanonEnd.
	p := f.CanonEnd - 1 // closing quote of prev_hash
	if line[p] != '"' {
		return f, errNoPrev
	}
	f.PrevHash = line[p-hashHexLen : p]
	p -= hashHexLen + len(memPrevHash) // start of `","prev_hash":"`
	if string(line[p:p+len(memPrevHash)]) != memPrevHash {
		return f, errNoPrev
	}
	// node id: bytes before p back to the opening quote.
	q := p
	for q > 0 && nodeIDByte(line[q-1]) {
		q--
	}
	if p-q == 0 || p-q > maxNodeID || q < len(memNodeID)+len(memSeq)+2 {
		return f, errNoNode
	}
	f.NodeID = line[q:p]
	q -= len(memNodeID)
	if string(line[q:q+len(memNodeID)]) != memNodeID {
		return f, errNoNode
	}
	// seq digits before q.
	d := q
	for d > 0 && line[d-1] >= '0' && line[d-1] <= '9' {
		d--
	}
	digits := line[d:q]
	if len(digits) == 0 || len(digits) > 20 || digits[0] == '0' || d < len(memSeq)+1 {
		return f, errNoSeq
	}
	seq, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return f, errNoSeq
	}
	f.Seq = seq
	d -= len(memSeq)
	if string(line[d:d+len(memSeq)]) != memSeq {
		return f, errNoSeq
	}
	switch {
	case d == 1: // `{"seq":...` — empty body
		f.BodyEnd = 1
	case line[d-1] == ',' && d >= 3:
		f.BodyEnd = d - 1
	default:
		return f, errNoSeq
	}
	return f, nil
}

var (
	errShort  = fmt.Errorf("line too short to hold chain members")
	errNoHash = fmt.Errorf(`line does not end with ,"hash":"<64 lowercase hex>"}`)
	errNoPrev = fmt.Errorf(`missing or malformed "prev_hash" member`)
	errNoNode = fmt.Errorf(`missing or malformed "node_id" member`)
	errNoSeq  = fmt.Errorf(`missing or malformed "seq" member`)
)

// lowerHex reports whether b is all lowercase hex digits.
func lowerHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// reservedKeys are the top-level members a body may not carry.
var reservedKeys = [...]string{"seq", "node_id", "prev_hash", "hash"}

// validateBody checks an entry body handed to Append: a JSON object starting
// with '{' and ending with '}' (no surrounding whitespace), no CR or LF byte
// anywhere (JSON permits them only as insignificant whitespace, which would
// break the one-line-per-entry format), valid JSON, no top-level chain
// member, and no top-level "type" starting with "vigil.".
func validateBody(body []byte, max int) error {
	if err := checkFraming(body, max); err != nil {
		return err
	}
	if !json.Valid(body) {
		return fmt.Errorf("%w: not valid JSON", ErrInvalidBody)
	}
	// Cheap pre-filter; only bodies mentioning a reserved name pay for a
	// top-level key scan.
	if !mentionsReserved(body) {
		return nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidBody, err)
	}
	for _, k := range reservedKeys {
		if _, ok := top[k]; ok {
			return fmt.Errorf("%w: top-level member %q is reserved for the chain", ErrInvalidBody, k)
		}
	}
	if t, ok := top["type"]; ok {
		var s string
		if json.Unmarshal(t, &s) == nil && len(s) >= 6 && s[:6] == "vigil." {
			return fmt.Errorf("%w: type %q is reserved for the chain", ErrInvalidBody, s)
		}
	}
	return nil
}

// checkFraming is the part of validateBody that keeps the line format
// intact whatever the body: braces at both ends, no raw CR or LF, at most
// max bytes. AppendTrusted checks only this.
func checkFraming(body []byte, max int) error {
	if len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		return fmt.Errorf("%w: not a JSON object without surrounding whitespace", ErrInvalidBody)
	}
	if len(body) > max {
		return fmt.Errorf("%w: %d bytes exceeds the %d-byte limit", ErrInvalidBody, len(body), max)
	}
	if bytes.IndexByte(body, '\n') >= 0 || bytes.IndexByte(body, '\r') >= 0 {
		return fmt.Errorf("%w: contains a raw newline", ErrInvalidBody)
	}
	return nil
}

// ValidateBody reports whether body may be passed to Append (nil) or not
// (an error matching ErrInvalidBody), with the default MaxEntryBytes. It is
// what Append checks, exported so producers of bodies for AppendTrusted
// can test that they only ever produce valid ones.
func ValidateBody(body []byte) error { return validateBody(body, DefaultMaxEntryBytes) }

// mentionsReserved reports whether any JSON string in body starts with a
// reserved member name (followed by its closing quote) or with "vigil.".
// One pass over the quotes; false positives only cost a full decode.
func mentionsReserved(body []byte) bool {
	for i := 0; i < len(body); {
		j := bytes.IndexByte(body[i:], '"')
		if j < 0 {
			return false
		}
		rest := body[i+j+1:]
		if bytes.HasPrefix(rest, []byte("vigil.")) {
			return true
		}
		for _, k := range reservedKeys {
			if len(rest) > len(k) && rest[len(k)] == '"' && string(rest[:len(k)]) == k {
				return true
			}
		}
		i += j + 1
	}
	return false
}
