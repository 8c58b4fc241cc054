// Command ledger prints the balances of a plain-text journal (see package
// ledger): every account, every top-level group, and the net worth
// (assets plus liabilities).
package main

import (
	"fmt"
	"os"

	"example.com/ledger"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ledger JOURNAL")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ledger:", err)
		os.Exit(1)
	}
	defer f.Close()
	txs, err := ledger.Parse(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ledger: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	accounts, groups := ledger.Balances(txs)
	fmt.Printf("transactions: %d (%s to %s)\n", len(txs),
		txs[0].Date.Format("2006-01-02"), txs[len(txs)-1].Date.Format("2006-01-02"))
	for _, b := range accounts {
		fmt.Printf("  %-22s %10s\n", b.Account, ledger.FormatCents(b.Cents))
	}
	var net int64
	for _, g := range groups {
		fmt.Printf("%-24s %10s\n", g.Account, ledger.FormatCents(g.Cents))
		if g.Account == "assets" || g.Account == "liabilities" {
			net += g.Cents
		}
	}
	fmt.Printf("%-24s %10s\n", "net worth", ledger.FormatCents(net))
}
