package shiptest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// FakeKafka is an in-process Kafka-protocol broker (kfake) that keeps its
// data in a folder, so it can be stopped and started again on the same
// port — fast outage tests. It is not Apache Kafka: tests that claim
// real-broker behaviour use the broker of the test services.
type FakeKafka struct {
	c    *kfake.Cluster
	port int
	dir  string
}

// StartKafka starts a one-broker kfake cluster that creates topics on
// first use; it is closed at cleanup.
func StartKafka(tb testing.TB) *FakeKafka {
	tb.Helper()
	fk := &FakeKafka{dir: tb.TempDir()}
	fk.Start(tb)
	tb.Cleanup(fk.Stop)
	return fk
}

// Addr is the broker's host:port.
func (fk *FakeKafka) Addr() string { return "127.0.0.1:" + strconv.Itoa(fk.port) }

// Start (re)starts the broker on its port with its data.
func (fk *FakeKafka) Start(tb testing.TB) {
	tb.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1), kfake.DataDir(fk.dir)}
	if fk.port != 0 {
		opts = append(opts, kfake.Ports(fk.port))
	}
	var err error
	for i := 0; i < 100; i++ { // the old listener's port may take a moment to free
		if fk.c, err = kfake.NewCluster(opts...); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("kfake: %v", err)
	}
	_, p, _ := net.SplitHostPort(fk.c.ListenAddrs()[0])
	fk.port, _ = strconv.Atoi(p)
}

// Stop closes the broker (its data stays in its folder).
func (fk *FakeKafka) Stop() {
	if fk.c != nil {
		fk.c.Close()
		fk.c = nil
	}
}
