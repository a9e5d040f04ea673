// Command vigil-kfake runs a small standalone Kafka-protocol broker
// (github.com/twmb/franz-go/pkg/kfake) on 127.0.0.1 for manual runs of
// Vigil's audit streams and for benchmarks that do not need a real Apache
// Kafka broker:
//
//	vigil-kfake -port 9092 -data-dir /tmp/kfake
//
// Topics are created on first use (one partition unless -partitions says
// otherwise). With -data-dir the broker keeps its topics on disk across
// restarts; without it everything is in memory. It stops on SIGINT or
// SIGTERM. kfake implements the Kafka protocol, not Kafka's storage
// engine: use it for development, never as a production broker, and never
// as evidence of how a real broker behaves.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("vigil-kfake", flag.ContinueOnError)
	port := fs.Int("port", 9092, "port to listen on (127.0.0.1)")
	dataDir := fs.String("data-dir", "", "keep topics in this folder across restarts (default: in memory)")
	partitions := fs.Int("partitions", 1, "partitions of auto-created topics")
	topics := fs.String("topics", "", "comma-separated topics to create at start")
	syncWrites := fs.Bool("sync", false, "fsync every produced batch (with -data-dir)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(*port), kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions), kfake.ClusterID("vigil-kfake")}
	if *dataDir != "" {
		if err := os.MkdirAll(*dataDir, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, "vigil-kfake:", err)
			return 1
		}
		opts = append(opts, kfake.DataDir(*dataDir))
		if *syncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	var seed []string
	for _, t := range strings.Split(*topics, ",") {
		if t = strings.TrimSpace(t); t != "" {
			seed = append(seed, t)
		}
	}
	if len(seed) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), seed...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vigil-kfake:", err)
		return 1
	}
	fmt.Printf("vigil-kfake: Kafka-protocol broker listening on %s (data: %s)\n", strings.Join(c.ListenAddrs(), ","), orMemory(*dataDir))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	c.Close()
	fmt.Println("vigil-kfake: stopped")
	return 0
}

func orMemory(dir string) string {
	if dir == "" {
		return "in memory"
	}
	return dir
}
