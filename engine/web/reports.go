package web

import (
	"encoding/csv"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/attribution"
	"github.com/shoptrail/shoptrail/engine/model"
)

// The attribution reports: GET /api/v1/reports/attribution and its
// drill-downs. The work is engine/attribution's.

// attributionQuery reads from, to (order days, inclusive; default the last
// 30 days), lookback (default [tracking] lookback), currency and
// orders=all|confirmed.
func (s *Server) attributionQuery(r *http.Request) (attribution.Query, error) {
	v := r.URL.Query()
	q := attribution.Query{Location: s.cfg.Reports.Location(), Lookback: s.cfg.Tracking.Lookback.Duration, Currency: strings.ToUpper(v.Get("currency"))}
	today := s.now().In(q.Location)
	q.To, q.From = today, today.AddDate(0, 0, -29)
	for _, p := range []struct {
		name string
		into *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if raw := v.Get(p.name); raw != "" {
			t, err := time.ParseInLocation(time.DateOnly, raw, q.Location)
			if err != nil {
				return q, invalid(p.name, p.name+" must be a date such as 2026-11-01")
			}
			*p.into = t
		}
	}
	if q.From.After(q.To) || q.To.Sub(q.From) > 365*24*time.Hour {
		return q, invalid("from", "from must not be after to, and the period at most 366 days")
	}
	if raw := v.Get("lookback"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < time.Hour || d > attribution.MaxLookback {
			return q, invalid("lookback", "lookback must be a duration from 1h to 2160h (90 days), such as 720h")
		}
		q.Lookback = d
	}
	if q.Currency != "" {
		if _, ok := model.CurrencyDigits(q.Currency); !ok {
			return q, invalid("currency", "currency must be an ISO 4217 code such as EUR")
		}
	}
	switch v.Get("orders") {
	case "", "confirmed":
	case "all":
		q.All = true
	default:
		return q, invalid("orders", "orders must be all or confirmed")
	}
	return q, nil
}

func wantsCSV(r *http.Request) (bool, error) {
	switch r.URL.Query().Get("format") {
	case "", "json":
		return false, nil
	case "csv":
		return true, nil
	}
	return false, invalid("format", "format must be json or csv")
}

// runAttribution reads a report's query and format (json or csv) and runs
// it.
func (s *Server) runAttribution(r *http.Request) (*attribution.Report, bool, error) {
	q, err := s.attributionQuery(r)
	if err != nil {
		return nil, false, err
	}
	asCSV, err := wantsCSV(r)
	if err != nil {
		return nil, false, err
	}
	rep, err := attribution.Run(s.st, q)
	return rep, asCSV, err
}

// major turns minor units into a decimal number of the currency.
func major(minor int64, currency string) float64 { return model.ToMajor(minor, currency) }

// attributionReport is GET /api/v1/reports/attribution.
func (s *Server) attributionReport(w http.ResponseWriter, r *http.Request) error {
	rep, asCSV, err := s.runAttribution(r)
	if err != nil {
		return err
	}
	if asCSV {
		head := []string{"channel"}
		for _, m := range attribution.Models {
			head = append(head, string(m)+"_orders", string(m)+"_value")
		}
		rows := [][]string{append(head, "assisted_orders", "assisted_value", "assist_ratio")}
		for _, c := range rep.Channels {
			row := []string{c.Channel}
			for _, m := range attribution.Models {
				row = append(row, num(c.Models[m].Orders), num(major(c.Models[m].Minor, rep.Currency)))
			}
			ratio := ""
			if v, ok := c.AssistRatio(); ok {
				ratio = num(v)
			}
			rows = append(rows, append(row, strconv.FormatInt(c.AssistedOrders, 10), num(major(c.AssistedMinor, rep.Currency)), ratio))
		}
		return writeCSV(w, "attribution.csv", rows)
	}
	writeJSON(w, http.StatusOK, s.reportJSON(rep))
	return nil
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func (s *Server) reportJSON(rep *attribution.Report) map[string]any {
	channels := make([]map[string]any, 0, len(rep.Channels))
	for _, c := range rep.Channels {
		models := map[string]any{}
		for _, m := range attribution.Models {
			models[string(m)] = map[string]any{"orders": c.Models[m].Orders, "value": major(c.Models[m].Minor, rep.Currency)}
		}
		var ratio any
		if v, ok := c.AssistRatio(); ok {
			ratio = math.Round(v*100) / 100
		}
		channels = append(channels, map[string]any{"channel": c.Channel, "models": models,
			"assisted_orders": c.AssistedOrders, "assisted_value": major(c.AssistedMinor, rep.Currency), "assist_ratio": ratio})
	}
	currencies := rep.Currencies
	if currencies == nil {
		currencies = []string{}
	}
	return map[string]any{
		"from": rep.Query.From.Format(time.DateOnly), "to": rep.Query.To.Format(time.DateOnly),
		"lookback": formatHours(rep.Query.Lookback), "currency": rep.Currency, "currencies": currencies,
		"confirmed_only": rep.Confirmed, "orders": rep.Orders, "revenue": major(rep.Minor, rep.Currency),
		"channels": channels,
		"note":     "Assisted orders and value do not add up across channels: one order assists every channel on its path but the last.",
	}
}

func formatHours(d time.Duration) string { return strconv.FormatFloat(d.Hours(), 'f', -1, 64) + "h" }

// attributionOrders is GET /api/v1/reports/attribution/orders: the orders
// behind a channel's figures under a model, each with its path and the
// credit it gave the channel, newest first, a page at a time.
func (s *Server) attributionOrders(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	channel, m, err := drillDown(r)
	if err != nil {
		return err
	}
	limit, err := parseLimit(v.Get("limit"), 100, 1000)
	if err != nil {
		return err
	}
	offset := 0
	if raw := v.Get("offset"); raw != "" {
		if offset, err = strconv.Atoi(raw); err != nil || offset < 0 {
			return invalid("offset", "offset must be a whole number from 0")
		}
	}
	rep, asCSV, err := s.runAttribution(r)
	if err != nil {
		return err
	}
	found, total, err := rep.Drill(s.st, channel, m, offset, limit)
	if err != nil {
		return err
	}
	if asCSV {
		rows := [][]string{{"order_id", "time", "value", "currency", "credit_share", "credit_value", "assisted", "path"}}
		for _, f := range found {
			rows = append(rows, []string{f.ID, f.Time.Format(time.RFC3339), num(major(f.Minor, f.Currency)), f.Currency,
				num(math.Round(f.Share*1e4) / 1e4), num(major(f.CreditMinor(), f.Currency)),
				strconv.FormatBool(f.Assist), pathString(f.Path)})
		}
		return writeCSV(w, "attribution-orders.csv", rows)
	}
	out := make([]map[string]any, 0, len(found))
	for _, f := range found {
		out = append(out, map[string]any{"order_id": f.ID, "time": f.Time, "value": major(f.Minor, f.Currency), "currency": f.Currency,
			"verified": f.Verified, "path": f.Path, "credit": map[string]any{"share": math.Round(f.Share*1e4) / 1e4,
				"value": major(f.CreditMinor(), f.Currency)}, "assisted": f.Assist})
	}
	ans := map[string]any{"channel": channel, "model": m, "currency": rep.Currency, "total": total, "orders": out}
	if int64(offset+limit) < total {
		ans["next_offset"] = offset + limit
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// drillDown reads the channel and the model (default linear) of a
// drill-down.
func drillDown(r *http.Request) (string, attribution.Model, error) {
	v := r.URL.Query()
	channel := v.Get("channel")
	if channel == "" {
		return "", "", invalid("channel", "channel is required, such as Email")
	}
	m := attribution.Model(v.Get("model"))
	if m == "" {
		m = attribution.Linear
	}
	if !slices.Contains(attribution.Models, m) {
		return "", "", invalid("model", "model must be one of "+modelNames())
	}
	return channel, m, nil
}

func modelNames() string {
	var names []string
	for _, m := range attribution.Models {
		names = append(names, string(m))
	}
	return strings.Join(names, ", ")
}

func pathString(path []attribution.Touch) string {
	names := make([]string, len(path))
	for i, t := range path {
		names[i] = t.Channel
	}
	return strings.Join(names, " > ")
}

// onsiteRow is an onsite campaign the shoppers saw before their orders.
type onsiteRow struct {
	Campaign string  `json:"campaign_id"`
	Name     string  `json:"name"`
	Orders   int64   `json:"orders"`
	minor    int64   `json:"-"`
	Value    float64 `json:"value"`
}

// onsiteRows names the report's onsite campaigns (a deleted one keeps
// its id).
func (s *Server) onsiteRows(rep *attribution.Report) []onsiteRow {
	rows := []onsiteRow{}
	for _, o := range rep.Onsite() {
		name := o.Campaign
		if s.campaigns != nil {
			if c, err := s.campaigns.Get(o.Campaign); err == nil {
				name = c.Name
			}
		}
		rows = append(rows, onsiteRow{o.Campaign, name, o.Orders, o.Minor, major(o.Minor, rep.Currency)})
	}
	return rows
}

// pathRow is a conversion path and its orders.
type pathRow struct {
	Path   string  `json:"path"`
	Orders int64   `json:"orders"`
	minor  int64   `json:"-"`
	Value  float64 `json:"value"`
}

// topPaths returns the report's most frequent paths, most orders first, at
// most limit.
func topPaths(rep *attribution.Report, limit int) []pathRow {
	var rows []pathRow
	for _, p := range rep.Paths(limit) {
		rows = append(rows, pathRow{Path: strings.Join(p.Channels, " > "), Orders: p.Orders, minor: p.Minor, Value: major(p.Minor, rep.Currency)})
	}
	return rows
}

// attributionPaths is GET /api/v1/reports/attribution/paths: the most
// frequent conversion paths (channel sequences) with their orders and
// value, and how long paths are and how long they took.
func (s *Server) attributionPaths(w http.ResponseWriter, r *http.Request) error {
	limit, err := parseLimit(r.URL.Query().Get("limit"), 20, 1000)
	if err != nil {
		return err
	}
	rep, asCSV, err := s.runAttribution(r)
	if err != nil {
		return err
	}
	rows := topPaths(rep, limit)
	if asCSV {
		out := [][]string{{"path", "orders", "value"}}
		for _, row := range rows {
			out = append(out, []string{row.Path, strconv.FormatInt(row.Orders, 10), num(row.Value)})
		}
		return writeCSV(w, "attribution-paths.csv", out)
	}
	lengthList := []map[string]any{}
	for i, n := range rep.Lengths(10) {
		if n > 0 {
			label := strconv.Itoa(i + 1)
			if i == 9 {
				label = "10+"
			}
			lengthList = append(lengthList, map[string]any{"touchpoints": label, "orders": n})
		}
	}
	lagList := []map[string]any{}
	for i, b := range attribution.LagBuckets {
		lagList = append(lagList, map[string]any{"days": b.Name, "orders": rep.Summary.Lags[i]})
	}
	writeJSON(w, http.StatusOK, map[string]any{"currency": rep.Currency, "orders": rep.Orders, "paths": rows,
		"path_lengths": lengthList, "time_lags": lagList, "onsite_campaigns": s.onsiteRows(rep)})
	return nil
}

// writeCSV writes rows as a CSV download. Cells that a spreadsheet would
// run as a formula (=, +, -, @, tab, CR) get a leading apostrophe.
func writeCSV(w http.ResponseWriter, name string, rows [][]string) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	cw := csv.NewWriter(w)
	for _, row := range rows {
		for i, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				if _, err := strconv.ParseFloat(cell, 64); err != nil {
					row[i] = "'" + cell
				}
			}
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
