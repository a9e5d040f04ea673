// Command vigil is the Vigil secrets server and its command-line client.
//
// Server:  vigil server [-dev] [-config FILE]
// Client:  vigil status | operator ... | kv ... | read/write/list/delete | token ... | secrets ... | ...
//
// The client talks HTTP to the server (VIGIL_ADDR or VAULT_ADDR, token from
// VIGIL_TOKEN or VAULT_TOKEN or the token helper file).
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// command is one CLI subcommand.
type command struct {
	name     string
	synopsis string
	run      func(args []string) int
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 1
		}
		return 0
	}
	if args[0] == "version" || args[0] == "-version" || args[0] == "--version" {
		fmt.Println("Vigil v" + version())
		return 0
	}
	// Longest match of up to three words ("operator raft snapshot save").
	for n := min(4, len(args)); n >= 1; n-- {
		name := strings.Join(args[:n], " ")
		if c, ok := commands[name]; ok {
			return c.run(args[n:])
		}
	}
	fmt.Fprintf(os.Stderr, "Unknown command: %s\n\n", strings.Join(args, " "))
	usage()
	return 1
}

func usage() {
	fmt.Fprintln(os.Stderr, "Usage: vigil <command> [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-32s %s\n", n, commands[n].synopsis)
	}
}
