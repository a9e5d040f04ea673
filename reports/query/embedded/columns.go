package embedded

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/vigilsec/vigil/reports/query"
)

// Dictionary-encoded columns. Every string field of a record is one
// column: a per-chunk dictionary of its distinct values and one id per
// row. Audit traffic repeats itself (a few hundred paths, actors,
// addresses, operations), so a row costs one or two bytes per column on
// disk, and a filter is evaluated once per distinct value, not per row.
const (
	cDisplay = iota
	cEntity
	cAccessor
	cRemote
	cOperation
	cPath
	cMount
	cMountType
	cError
	cErrorCode
	cTokenType
	cGranting // list (see encodeList)
	cDeny     // list
	cFlags    // name/value pairs, sorted by name
	cPolicies // list
	cActor
	cEntityName
	cNamespace
	nCols
)

// Row bits.
const (
	bitAllowed    = 1 << 0
	bitIncomplete = 1 << 1
	bitInternal   = 1 << 2
)

// dict is a growing dictionary (the builder's side).
type dict struct {
	ids  map[string]uint32
	vals []string
	last uint32 // the previous row's id: audit rows repeat their neighbours
}

func (d *dict) id(b []byte) uint32 {
	if int(d.last) < len(d.vals) && d.vals[d.last] == string(b) {
		return d.last
	}
	if id, ok := d.ids[string(b)]; ok {
		d.last = id
		return id
	}
	s := string(b)
	id := uint32(len(d.vals))
	d.ids[s] = id
	d.vals = append(d.vals, s)
	d.last = id
	return id
}

// chunk is a set of rows in ingest (seq) order. A chunk being built (the
// tail) only grows; a chunk read from a file never changes. Readers hold a
// view (see view): the column slices as they were when the view was taken,
// so appends by the builder never race with them.
type chunk struct {
	time   []int64
	seq    []uint64
	bits   []uint8
	status []uint16
	port   []uint16
	// Request ids: 16 bytes per row when every id is a canonical UUID
	// (uuids != nil), else a blob with end offsets.
	uuids  []byte
	reqs   []byte
	reqEnd []uint32
	ids    [nCols][]uint32
	vals   [nCols][]string

	dicts *[nCols]dict // builder only
	meta  chunkMeta
}

// chunkMeta describes a chunk file (kept in the state file too, so queries
// prune chunks by time and seq without opening them).
type chunkMeta struct {
	File   string `json:"file"`
	Rows   int    `json:"rows"`
	MinT   int64  `json:"min_time"`
	MaxT   int64  `json:"max_time"`
	MinSeq uint64 `json:"min_seq"`
	MaxSeq uint64 `json:"max_seq"`
	Bytes  int64  `json:"bytes"`
}

func newBuilder() *chunk {
	c := &chunk{dicts: &[nCols]dict{}}
	for i := range c.dicts {
		c.dicts[i].ids = map[string]uint32{}
	}
	return c
}

func (c *chunk) rows() int { return len(c.seq) }

// raw is one row's fields as the builder receives them (byte slices that
// may alias a parser's buffer: add copies what it keeps).
type raw struct {
	time   int64
	seq    uint64
	bits   uint8
	status uint16
	port   uint16
	reqID  []byte
	cols   [nCols][]byte
}

// add appends a row (builder only).
func (c *chunk) add(r *raw) {
	if c.rows() == 0 || r.time < c.meta.MinT {
		c.meta.MinT = r.time
	}
	if c.rows() == 0 || r.time > c.meta.MaxT {
		c.meta.MaxT = r.time
	}
	if c.rows() == 0 {
		c.meta.MinSeq = r.seq
	}
	c.meta.MaxSeq = r.seq
	c.time = append(c.time, r.time)
	c.seq = append(c.seq, r.seq)
	c.bits = append(c.bits, r.bits)
	c.status = append(c.status, r.status)
	c.port = append(c.port, r.port)
	c.reqs = append(c.reqs, r.reqID...)
	c.reqEnd = append(c.reqEnd, uint32(len(c.reqs)))
	for i := 0; i < nCols; i++ {
		id := c.dicts[i].id(r.cols[i])
		c.ids[i] = append(c.ids[i], id)
	}
	for i := 0; i < nCols; i++ {
		c.vals[i] = c.dicts[i].vals
	}
	c.meta.Rows = c.rows()
}

// view is a read-only snapshot of a chunk's first n rows.
type view struct {
	c    chunk // column slice headers as of the snapshot
	n    int
	node string
}

// snapshot returns a view of the rows present now. Must be called with
// the builder's lock held (or on an immutable chunk).
func (c *chunk) snapshot(node string) *view {
	v := &view{c: *c, n: c.rows(), node: node}
	v.c.dicts = nil
	return v
}

func (v *view) reqID(i int) string {
	c := &v.c
	if c.uuids != nil {
		return formatUUID(c.uuids[i*16 : i*16+16])
	}
	start := uint32(0)
	if i > 0 {
		start = c.reqEnd[i-1]
	}
	return string(c.reqs[start:c.reqEnd[i]])
}

func (v *view) str(col, i int) string { return v.c.vals[col][v.c.ids[col][i]] }

// record materialises row i.
func (v *view) record(i int) query.Record {
	c := &v.c
	b := c.bits[i]
	r := query.Record{
		NodeID: v.node, Seq: c.seq[i], RequestID: v.reqID(i), Time: timeOf(c.time[i]),
		DisplayName: v.str(cDisplay, i), Actor: v.str(cActor, i), EntityName: v.str(cEntityName, i),
		EntityID: v.str(cEntity, i), Accessor: v.str(cAccessor, i),
		RemoteAddr: v.str(cRemote, i), RemotePort: int(c.port[i]), Operation: v.str(cOperation, i), Path: v.str(cPath, i),
		MountPoint: v.str(cMount, i), MountType: v.str(cMountType, i), Namespace: v.str(cNamespace, i), Allowed: b&bitAllowed != 0,
		Error: v.str(cError, i), Status: int(c.status[i]), ErrorCode: v.str(cErrorCode, i),
		GrantingPolicies: decodeList(v.str(cGranting, i)), DenyReasons: decodeList(v.str(cDeny, i)),
		Flags: decodeFlags(v.str(cFlags, i)), Policies: decodeList(v.str(cPolicies, i)), TokenType: v.str(cTokenType, i),
		Internal: b&bitInternal != 0, Incomplete: b&bitIncomplete != 0,
	}
	return r
}

// encodeList appends the dictionary key of a string list: for each item
// its length (uvarint) and bytes. An empty list is the empty key.
func encodeList(dst []byte, items [][]byte) []byte {
	for _, it := range items {
		dst = binary.AppendUvarint(dst, uint64(len(it)))
		dst = append(dst, it...)
	}
	return dst
}

func decodeList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for len(s) > 0 {
		n, k := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
		if k <= 0 || uint64(len(s)-k) < n {
			return out
		}
		out = append(out, s[k:k+int(n)])
		s = s[k+int(n):]
	}
	return out
}

// Flags are encoded as a list name, value, name, value... sorted by name.
func decodeFlags(s string) map[string]string {
	l := decodeList(s)
	if len(l) < 2 {
		return nil
	}
	m := make(map[string]string, len(l)/2)
	for i := 0; i+1 < len(l); i += 2 {
		m[l[i]] = l[i+1]
	}
	return m
}

// --- chunk files ---

const chunkMagic = "VQIXCHK1"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks an index file that fails its checks: the index is
// rebuilt from the log.
var errCorrupt = errors.New("audit query index: corrupt file")

// writeChunk writes c's rows to dir/name atomically (temporary file,
// fsync, rename). It returns the file size.
func writeChunk(dir, name string, c *chunk) (int64, error) {
	var buf bytes.Buffer
	buf.WriteString(chunkMagic)
	meta, _ := json.Marshal(c.meta)
	le := binary.LittleEndian
	buf.Write(le.AppendUint32(nil, uint32(len(meta))))
	buf.Write(meta)
	n := c.rows()
	b := make([]byte, 0, n*8)
	for _, t := range c.time {
		b = le.AppendUint64(b, uint64(t))
	}
	for _, s := range c.seq {
		b = le.AppendUint64(b, s)
	}
	b = append(b, c.bits...)
	for _, s := range c.status {
		b = le.AppendUint16(b, s)
	}
	for _, p := range c.port {
		b = le.AppendUint16(b, p)
	}
	buf.Write(b)
	// Request ids.
	all := true
	var u [16]byte
	for i := 0; i < n && all; i++ {
		all = parseUUID((&view{c: *c}).reqRaw(i), u[:])
	}
	if all {
		buf.WriteByte(1)
		for i := 0; i < n; i++ {
			parseUUID((&view{c: *c}).reqRaw(i), u[:])
			buf.Write(u[:])
		}
	} else {
		buf.WriteByte(2)
		buf.Write(le.AppendUint32(nil, uint32(len(c.reqs))))
		buf.Write(c.reqs)
		for _, e := range c.reqEnd {
			buf.Write(le.AppendUint32(nil, e))
		}
	}
	for col := 0; col < nCols; col++ {
		vals := c.vals[col]
		buf.Write(le.AppendUint32(nil, uint32(len(vals))))
		for _, s := range vals {
			buf.Write(binary.AppendUvarint(nil, uint64(len(s))))
			buf.WriteString(s)
		}
		w := width(len(vals))
		buf.WriteByte(byte(w))
		ids := make([]byte, 0, n*w)
		for _, id := range c.ids[col] {
			switch w {
			case 1:
				ids = append(ids, byte(id))
			case 2:
				ids = le.AppendUint16(ids, uint16(id))
			default:
				ids = le.AppendUint32(ids, id)
			}
		}
		buf.Write(ids)
	}
	buf.Write(le.AppendUint32(nil, crc32.Checksum(buf.Bytes(), castagnoli)))
	return int64(buf.Len()), writeFileAtomic(filepath.Join(dir, name), buf.Bytes())
}

func (v *view) reqRaw(i int) []byte {
	c := &v.c
	start := uint32(0)
	if i > 0 {
		start = c.reqEnd[i-1]
	}
	return c.reqs[start:c.reqEnd[i]]
}

func width(n int) int {
	switch {
	case n <= 1<<8:
		return 1
	case n <= 1<<16:
		return 2
	}
	return 4
}

// readChunk reads and checks a chunk file.
func readChunk(path string) (*chunk, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < len(chunkMagic)+8 || string(data[:len(chunkMagic)]) != chunkMagic {
		return nil, fmt.Errorf("%w: %s: bad magic", errCorrupt, path)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: %s: checksum mismatch", errCorrupt, path)
	}
	r := &decoder{b: body[len(chunkMagic):]}
	c := &chunk{}
	ml := int(r.u32())
	if err := json.Unmarshal(r.take(ml), &c.meta); err != nil || r.err != nil {
		return nil, fmt.Errorf("%w: %s: header", errCorrupt, path)
	}
	n := c.meta.Rows
	tb := r.take(n * 8)
	sb := r.take(n * 8)
	c.bits = r.take(n)
	stb := r.take(n * 2)
	pb := r.take(n * 2)
	if r.err != nil {
		return nil, fmt.Errorf("%w: %s: truncated", errCorrupt, path)
	}
	le := binary.LittleEndian
	c.time, c.seq, c.status, c.port = make([]int64, n), make([]uint64, n), make([]uint16, n), make([]uint16, n)
	for i := 0; i < n; i++ {
		c.time[i] = int64(le.Uint64(tb[i*8:]))
		c.seq[i] = le.Uint64(sb[i*8:])
		c.status[i] = le.Uint16(stb[i*2:])
		c.port[i] = le.Uint16(pb[i*2:])
	}
	switch r.u8() {
	case 1:
		c.uuids = r.take(n * 16)
	case 2:
		c.reqs = r.take(int(r.u32()))
		eb := r.take(n * 4)
		if r.err == nil {
			c.reqEnd = make([]uint32, n)
			for i := range c.reqEnd {
				c.reqEnd[i] = le.Uint32(eb[i*4:])
			}
		}
	default:
		return nil, fmt.Errorf("%w: %s: request id column", errCorrupt, path)
	}
	for col := 0; col < nCols && r.err == nil; col++ {
		nv := int(r.u32())
		if nv > n+1 || r.err != nil {
			return nil, fmt.Errorf("%w: %s: dictionary size", errCorrupt, path)
		}
		vals := make([]string, nv)
		for i := range vals {
			vals[i] = string(r.take(int(r.uvarint())))
		}
		w := int(r.u8())
		ib := r.take(n * w)
		if r.err != nil {
			break
		}
		ids := make([]uint32, n)
		for i := range ids {
			var id uint32
			switch w {
			case 1:
				id = uint32(ib[i])
			case 2:
				id = uint32(le.Uint16(ib[i*2:]))
			case 4:
				id = le.Uint32(ib[i*4:])
			default:
				return nil, fmt.Errorf("%w: %s: id width %d", errCorrupt, path, w)
			}
			if int(id) >= nv {
				return nil, fmt.Errorf("%w: %s: id out of range", errCorrupt, path)
			}
			ids[i] = id
		}
		c.vals[col], c.ids[col] = vals, ids
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %s: truncated or trailing bytes", errCorrupt, path)
	}
	c.meta.Bytes = int64(len(data))
	return c, nil
}

type decoder struct {
	b   []byte
	err error
}

func (r *decoder) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *decoder) u8() uint8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *decoder) u32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *decoder) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.err = io.ErrUnexpectedEOF
		return 0
	}
	r.b = r.b[k:]
	return v
}

// parseUUID decodes a canonical lower-case UUID string into out.
func parseUUID(s []byte, out []byte) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, lo := unhex(s[i]), unhex(s[i+1])
		if hi < 0 || lo < 0 {
			return false
		}
		out[j] = byte(hi<<4 | lo)
		i, j = i+2, j+1
	}
	return true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

func formatUUID(u []byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// writeFileAtomic writes data to path through a temporary file, fsyncs it,
// renames it into place and fsyncs the folder.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	w := bufio.NewWriterSize(f, 1<<20)
	_, err = w.Write(data)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
