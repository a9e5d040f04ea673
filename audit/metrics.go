package audit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/audit/diskwatch"
)

// Metrics are the audit subsystem's Prometheus metrics. Counters fed on
// the write path are kept here; gauges and writer counters are read from
// the devices and the disk watcher when scraped. A nil *Metrics records
// nothing.
type Metrics struct {
	entries    *prometheus.CounterVec
	failures   *prometheus.CounterVec
	refusedC   *prometheus.CounterVec
	unauditedC prometheus.Counter
	fsync      *prometheus.HistogramVec
	batch      *prometheus.HistogramVec
	tamper     *prometheus.CounterVec
	witnessOK  *prometheus.CounterVec
	witnessErr *prometheus.CounterVec

	// refusals reports the devices refused at start (scraped).
	refusals func() map[string]string

	devices func() []*Device
	disk    func() []diskwatch.State
	now     func() time.Time
}

// NewMetrics builds the metrics; devices and disk are read at scrape time.
func NewMetrics(devices func() []*Device, disk func() []diskwatch.State, now func() time.Time) *Metrics {
	return &Metrics{
		entries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_audit_entries_total",
			Help: "Audit entries recorded, by device and entry type."}, []string{"device", "type"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_audit_write_failures_total",
			Help: "Audit entries a device failed to record."}, []string{"device"}),
		refusedC: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_audit_refused_total",
			Help: "Requests refused (request stage) or responses withheld (response stage) because no device recorded the entry."}, []string{"stage"}),
		unauditedC: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_audit_unaudited_total",
			Help: "Events served without any audit device (audit never configured)."}),
		fsync: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_audit_fsync_seconds",
			Help: "Latency of each fsync of an audit file.", Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16)}, []string{"device"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_audit_batch_lines",
			Help: "Lines made durable by one group commit (one write + fsync).", Buckets: prometheus.ExponentialBuckets(1, 2, 14)}, []string{"device"}),
		tamper: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_audit_tamper_detected_total",
			Help: "Audit logs found not to match their checkpoints, at start or by sys/audit/verify, by device, kind of tampering and where it was found."},
			[]string{"device", "kind", "check"}),
		witnessOK: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_audit_witness_published_total",
			Help: "Checkpoints handed to a witness (raft storage, an HTTP witness) and accepted."}, []string{"witness"}),
		witnessErr: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_audit_witness_failures_total",
			Help: "Checkpoints a witness did not accept, and witnesses that could not be read at start."}, []string{"witness"}),
		devices: devices, disk: disk, now: now,
	}
}

// SetRefusals sets the function the scrape asks which file devices are
// refused, and for what kind of tampering.
func (m *Metrics) SetRefusals(f func() map[string]string) {
	if m != nil {
		m.refusals = f
	}
}

// Tampered counts a log found not to match its checkpoints.
func (m *Metrics) Tampered(device, kind, check string) {
	if m != nil {
		m.tamper.WithLabelValues(device, kind, check).Inc()
	}
}

// Witnessed counts a checkpoint a witness accepted (err nil) or not.
func (m *Metrics) Witnessed(name string, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.witnessErr.WithLabelValues(name).Inc()
		return
	}
	m.witnessOK.WithLabelValues(name).Inc()
}

func (m *Metrics) recorded(device, typ string) {
	if m != nil {
		m.entries.WithLabelValues(device, typ).Inc()
	}
}

// deviceCounters are a device's vigil_audit_entries_total children for
// the two entry types, resolved once instead of per entry.
type deviceCounters struct {
	m         *Metrics
	req, resp prometheus.Counter
}

// recordedOn is recorded(d.Name(), typ) with the counters cached on d.
func (m *Metrics) recordedOn(d *Device, typ string) {
	if m == nil {
		return
	}
	c := d.ctrs.Load()
	if c == nil || c.m != m {
		c = &deviceCounters{m: m, req: m.entries.WithLabelValues(d.Name(), "request"),
			resp: m.entries.WithLabelValues(d.Name(), "response")}
		d.ctrs.Store(c)
	}
	switch typ {
	case "request":
		c.req.Inc()
	case "response":
		c.resp.Inc()
	default:
		m.recorded(d.Name(), typ)
	}
}

func (m *Metrics) failure(device string) {
	if m != nil {
		m.failures.WithLabelValues(device).Inc()
	}
}

func (m *Metrics) refused(stage string) {
	if m != nil {
		m.refusedC.WithLabelValues(stage).Inc()
	}
}

func (m *Metrics) unaudited() {
	if m != nil {
		m.unauditedC.Inc()
	}
}

// OnSync returns the chain OnSync callback for a device.
func (m *Metrics) OnSync(device string) func(d time.Duration, lines, bytes int) {
	if m == nil {
		return nil
	}
	h, b := m.fsync.WithLabelValues(device), m.batch.WithLabelValues(device)
	return func(d time.Duration, lines, _ int) {
		h.Observe(d.Seconds())
		if lines > 0 {
			b.Observe(float64(lines))
		}
	}
}

var (
	descBytes      = prometheus.NewDesc("vigil_audit_bytes_written_total", "Bytes written to the device's log (all lines).", []string{"device"}, nil)
	descLines      = prometheus.NewDesc("vigil_audit_lines_written_total", "Lines written to the device's log, chain records included.", []string{"device"}, nil)
	descQueue      = prometheus.NewDesc("vigil_audit_queue_depth", "Entries queued for the device's writer or in the batch being written.", []string{"device"}, nil)
	descUp         = prometheus.NewDesc("vigil_audit_device_up", "1 when the device's last write succeeded, 0 when it failed or it is not open.", []string{"device", "type"}, nil)
	descCPSeq      = prometheus.NewDesc("vigil_audit_last_checkpoint_seq", "Seq covered by the device's last signed checkpoint.", []string{"device"}, nil)
	descCPAge      = prometheus.NewDesc("vigil_audit_last_checkpoint_age_seconds", "Seconds since the device's last checkpoint.", []string{"device"}, nil)
	descReopen     = prometheus.NewDesc("vigil_audit_active_file_reopens_total", "Times the active file was found deleted, moved or replaced and a new one was opened.", []string{"device"}, nil)
	descReload     = prometheus.NewDesc("vigil_audit_reloads_total", "SIGHUP reopens of the device's file.", []string{"device"}, nil)
	descRot        = prometheus.NewDesc("vigil_audit_rotations_total", "Segment rotations.", []string{"device"}, nil)
	descFsyncFail  = prometheus.NewDesc("vigil_audit_fsync_failures_total", "Failed fsyncs.", []string{"device"}, nil)
	descTimeouts   = prometheus.NewDesc("vigil_audit_write_timeouts_total", "Entries that were not recorded within write_timeout.", []string{"device"}, nil)
	descDiskFree   = prometheus.NewDesc("vigil_audit_disk_free_bytes", "Bytes available in the device's folder.", []string{"device"}, nil)
	descDiskPct    = prometheus.NewDesc("vigil_audit_disk_free_percent", "Percent of the device's filesystem that is free.", []string{"device"}, nil)
	descDiskLevel  = prometheus.NewDesc("vigil_audit_disk_pressure_level", "Disk pressure: 0 ok, 1 warn, 2 critical, 3 full.", []string{"device"}, nil)
	descReserve    = prometheus.NewDesc("vigil_audit_disk_reserve_bytes", "Bytes held in the device folder's emergency reserve file.", []string{"device"}, nil)
	descPruned     = prometheus.NewDesc("vigil_audit_segments_pruned_total", "Rotated segments deleted by retention.", []string{"device"}, nil)
	descReleased   = prometheus.NewDesc("vigil_audit_reserve_released_total", "Times the emergency reserve was released because the disk was full.", []string{"device"}, nil)
	descRefused    = prometheus.NewDesc("vigil_audit_chain_refused", "1 while a file device is refused because its log does not match its trusted checkpoints (see sys/audit/relink).", []string{"device", "kind"}, nil)
	scrapeOnlyDesc = []*prometheus.Desc{descBytes, descLines, descQueue, descUp, descCPSeq, descCPAge, descReopen, descReload, descRot,
		descFsyncFail, descTimeouts, descDiskFree, descDiskPct, descDiskLevel, descReserve, descPruned, descReleased, descRefused}
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.entries.Describe(ch)
	m.failures.Describe(ch)
	m.refusedC.Describe(ch)
	m.unauditedC.Describe(ch)
	m.fsync.Describe(ch)
	m.batch.Describe(ch)
	m.tamper.Describe(ch)
	m.witnessOK.Describe(ch)
	m.witnessErr.Describe(ch)
	for _, d := range scrapeOnlyDesc {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.entries.Collect(ch)
	m.failures.Collect(ch)
	m.refusedC.Collect(ch)
	m.unauditedC.Collect(ch)
	m.fsync.Collect(ch)
	m.batch.Collect(ch)
	m.tamper.Collect(ch)
	m.witnessOK.Collect(ch)
	m.witnessErr.Collect(ch)
	c := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	if m.refusals != nil {
		for dev, kind := range m.refusals() {
			c(descRefused, prometheus.GaugeValue, 1, dev, kind)
		}
	}
	now := m.now()
	for _, d := range m.devices() {
		name := d.Name()
		up := 1.0
		if f, _ := d.Failed(); f {
			up = 0
		}
		c(descUp, prometheus.GaugeValue, up, name, d.Config.Type)
		fs, ok := d.Sink().(*FileSink)
		if !ok {
			continue
		}
		st := fs.W.Stats()
		c(descBytes, prometheus.CounterValue, float64(st.Bytes), name)
		c(descLines, prometheus.CounterValue, float64(st.Lines), name)
		c(descQueue, prometheus.GaugeValue, float64(st.QueueDepth), name)
		c(descCPSeq, prometheus.GaugeValue, float64(st.LastCheckpointSeq), name)
		if !st.LastCheckpointTime.IsZero() {
			c(descCPAge, prometheus.GaugeValue, now.Sub(st.LastCheckpointTime).Seconds(), name)
		}
		c(descReopen, prometheus.CounterValue, float64(st.ActiveFileMissing), name)
		c(descReload, prometheus.CounterValue, float64(st.Reopens), name)
		c(descRot, prometheus.CounterValue, float64(st.Rotations), name)
		c(descFsyncFail, prometheus.CounterValue, float64(st.FsyncFailures), name)
		c(descTimeouts, prometheus.CounterValue, float64(st.Timeouts), name)
	}
	for _, s := range m.disk() {
		if s.Checked.IsZero() {
			continue
		}
		c(descDiskFree, prometheus.GaugeValue, float64(s.Usage.Avail), s.Name)
		c(descDiskPct, prometheus.GaugeValue, s.Usage.FreePercent(), s.Name)
		c(descDiskLevel, prometheus.GaugeValue, float64(s.Level), s.Name)
		c(descReserve, prometheus.GaugeValue, float64(s.ReserveHeld), s.Name)
		c(descPruned, prometheus.CounterValue, float64(s.Pruned), s.Name)
		c(descReleased, prometheus.CounterValue, float64(s.Released), s.Name)
	}
}
