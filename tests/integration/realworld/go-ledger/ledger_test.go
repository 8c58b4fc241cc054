package ledger

import (
	"strings"
	"testing"
)

func TestParseCents(t *testing.T) {
	for in, want := range map[string]int64{"12.34": 1234, "-0.5": -50, "7": 700, "0.05": 5} {
		got, err := ParseCents(in)
		if err != nil || got != want {
			t.Errorf("ParseCents(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.234", "x", "1.", "-"} {
		if _, err := ParseCents(in); err == nil {
			t.Errorf("ParseCents(%q) accepted", in)
		}
	}
}

func TestInferredAmountAndBalance(t *testing.T) {
	txs, err := Parse(strings.NewReader("2026-02-01 Rent\n  expenses:rent 800\n  assets:bank\n"))
	if err != nil {
		t.Fatal(err)
	}
	acc, grp := Balances(txs)
	if len(acc) != 2 || acc[0].Account != "assets:bank" || acc[0].Cents != -80000 {
		t.Errorf("accounts: %+v", acc)
	}
	if len(grp) != 2 || grp[1].Account != "expenses" || grp[1].Cents != 80000 {
		t.Errorf("groups: %+v", grp)
	}
}

func TestUnbalancedNamesTheLine(t *testing.T) {
	_, err := Parse(strings.NewReader("; c\n2026-02-01 Oops\n  a 1.00\n  b -0.99\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2:") || !strings.Contains(err.Error(), "0.01") {
		t.Errorf("err = %v", err)
	}
}
