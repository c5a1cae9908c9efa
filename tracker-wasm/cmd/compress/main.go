// Command compress writes FILE.br next to FILE with brotli's best (and
// slowest) setting, quality 11: `make wasm` runs it on the tracker, which
// is served with it (precompressed once at build time: 11 takes seconds,
// which a start of Shoptrail should not). The tracker package checks the
// file against the module it ships with.
package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/andybalholm/brotli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: compress FILE")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var out bytes.Buffer
	w := brotli.NewWriterOptions(&out, brotli.WriterOptions{Quality: 11, LGWin: 24})
	w.Write(raw)
	if err := w.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[1]+".br", out.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s.br: %d bytes (%d raw)\n", os.Args[1], out.Len(), len(raw))
}
