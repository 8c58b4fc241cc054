// Package ledger reads a small plain-text double-entry journal and sums
// it per account.  Amounts are kept in cents (int64): no float rounding.
//
// A journal is a list of transactions separated by blank lines.  The first
// line of a transaction is "YYYY-MM-DD description"; each following
// (indented) line is a posting "account amount".  One posting per
// transaction may leave the amount out: it takes what balances the rest.
// Lines starting with ';' are comments.
package ledger

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Posting moves Cents into (or, negative, out of) Account.
type Posting struct {
	Account string
	Cents   int64
}

// Transaction is one dated entry whose postings sum to zero.
type Transaction struct {
	Date        time.Time
	Description string
	Postings    []Posting
	Line        int
}

// ParseCents reads "-12.34", "12.3" or "12" as cents.
func ParseCents(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || (hasFrac && frac == "") {
		return 0, fmt.Errorf("bad amount %q", s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, err := strconv.ParseUint(whole, 10, 40)
	if err != nil {
		return 0, fmt.Errorf("bad amount %q", s)
	}
	f, err := strconv.ParseUint(frac, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("bad amount %q", s)
	}
	c := int64(w*100 + f)
	if neg {
		c = -c
	}
	return c, nil
}

// FormatCents writes cents as "-12.34".
func FormatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// Parse reads a journal; errors name the line.
func Parse(r io.Reader) ([]Transaction, error) {
	var txs []Transaction
	var cur *Transaction
	missing := -1
	finish := func() error {
		if cur == nil {
			return nil
		}
		var sum int64
		for _, p := range cur.Postings {
			sum += p.Cents
		}
		if missing >= 0 {
			cur.Postings[missing].Cents = -sum
		} else if sum != 0 {
			return fmt.Errorf("line %d: %q does not balance (off by %s)",
				cur.Line, cur.Description, FormatCents(sum))
		}
		if len(cur.Postings) < 2 {
			return fmt.Errorf("line %d: %q needs two postings", cur.Line, cur.Description)
		}
		txs = append(txs, *cur)
		cur, missing = nil, -1
		return nil
	}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, ";"):
			if trimmed == "" {
				if err := finish(); err != nil {
					return nil, err
				}
			}
		case line[0] != ' ' && line[0] != '\t':
			if err := finish(); err != nil {
				return nil, err
			}
			date, desc, _ := strings.Cut(trimmed, " ")
			d, err := time.Parse("2006-01-02", date)
			if err != nil {
				return nil, fmt.Errorf("line %d: bad date %q", n, date)
			}
			cur = &Transaction{Date: d, Description: strings.TrimSpace(desc), Line: n}
		default:
			if cur == nil {
				return nil, fmt.Errorf("line %d: posting outside a transaction", n)
			}
			f := strings.Fields(trimmed)
			p := Posting{Account: f[0]}
			switch len(f) {
			case 1:
				if missing >= 0 {
					return nil, fmt.Errorf("line %d: two postings without an amount", n)
				}
				missing = len(cur.Postings)
			case 2:
				c, err := ParseCents(f[1])
				if err != nil {
					return nil, fmt.Errorf("line %d: %v", n, err)
				}
				p.Cents = c
			default:
				return nil, fmt.Errorf("line %d: want \"account amount\"", n)
			}
			cur.Postings = append(cur.Postings, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return txs, nil
}

// Balance is an account (or a top-level group) and what it holds.
type Balance struct {
	Account string
	Cents   int64
}

// Balances sums the postings per account and per top-level group (the part
// of the name before the first ':'), each sorted by name.
func Balances(txs []Transaction) (accounts, groups []Balance) {
	acc := map[string]int64{}
	grp := map[string]int64{}
	for _, t := range txs {
		for _, p := range t.Postings {
			acc[p.Account] += p.Cents
			g, _, _ := strings.Cut(p.Account, ":")
			grp[g] += p.Cents
		}
	}
	return sorted(acc), sorted(grp)
}

func sorted(m map[string]int64) []Balance {
	out := make([]Balance, 0, len(m))
	for k, v := range m {
		out = append(out, Balance{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out
}
