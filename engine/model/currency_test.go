package model

import (
	"regexp"
	"testing"
)

func TestCurrencyDigits(t *testing.T) {
	for _, tt := range []struct {
		code   string
		digits int
		ok     bool
	}{
		{"EUR", 2, true}, {"USD", 2, true}, {"JPY", 0, true}, {"KRW", 0, true}, {"KWD", 3, true},
		{"BHD", 3, true}, {"TND", 3, true}, {"CLF", 4, true}, {"ISK", 0, true}, {"XCG", 2, true},
		{"QQQ", 0, false}, {"eur", 0, false}, {"HRK", 0, false}, {"XAU", 0, false}, {"", 0, false}, {"€", 0, false},
	} {
		d, ok := CurrencyDigits(tt.code)
		if d != tt.digits || ok != tt.ok {
			t.Errorf("CurrencyDigits(%q) = %d, %v; want %d, %v", tt.code, d, ok, tt.digits, tt.ok)
		}
	}
	code := regexp.MustCompile(`^[A-Z]{3}$`)
	for c, d := range currencyDigits {
		if !code.MatchString(c) || d < 0 || d > 4 {
			t.Errorf("bad table entry %q: %d", c, d)
		}
	}
}

func TestMinorUnits(t *testing.T) {
	for _, tt := range []struct {
		major    float64
		currency string
		minor    int64
		text     string
	}{
		{99.9, "EUR", 9990, "99.90"},
		{20.5, "EUR", 2050, "20.50"},
		{1.005, "EUR", 101, "1.01"},
		{0.29, "USD", 29, "0.29"},
		{1500, "JPY", 1500, "1500"},
		{1499.5, "JPY", 1500, "1500"},
		{1.2345, "KWD", 1235, "1.235"},
		{12, "KWD", 12000, "12.000"},
		{1e6, "EUR", 100000000, "1000000.00"},
		{1e12, "KWD", 1e15, "1000000000000.000"},
		{5, "QQQ", 500, "5.00"}, // unknown: 2 digits, as events stored before currencies were checked
		{0, "EUR", 0, "0.00"},
	} {
		if got := ToMinor(tt.major, tt.currency); got != tt.minor {
			t.Errorf("ToMinor(%v, %s) = %d, want %d", tt.major, tt.currency, got, tt.minor)
		}
		if got := FormatMinor(tt.minor, tt.currency); got != tt.text {
			t.Errorf("FormatMinor(%d, %s) = %q, want %q", tt.minor, tt.currency, got, tt.text)
		}
	}
}
