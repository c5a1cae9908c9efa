package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/shoptrail/shoptrail/engine/attribution"
	"github.com/shoptrail/shoptrail/engine/model"
)

// Reports → Attribution in the admin UI: the same figures as
// GET /api/v1/reports/attribution, a chart, the top paths, and the orders
// behind each cell.

var modelLabels = map[attribution.Model]string{
	attribution.LastInteraction: "Last interaction", attribution.LastNonDirect: "Last non-direct",
	attribution.FirstInteraction: "First interaction", attribution.Linear: "Linear",
	attribution.PositionBased: "Position-based", attribution.TimeDecay: "Time decay (7 d)",
	attribution.DataDriven: "Data-driven",
}

// attributionPage is GET /reports/attribution.
func (s *Server) attributionPage(w http.ResponseWriter, r *http.Request) error {
	q, qerr := s.attributionQuery(r)
	data := map[string]any{"From": q.From.Format(time.DateOnly), "To": q.To.Format(time.DateOnly), "Currency": q.Currency}
	type option struct {
		Value, Label string
		Selected     bool
	}
	var lookbacks []option
	for _, d := range []int{1, 7, 14, 30, 60, 90} {
		lb := time.Duration(d) * 24 * time.Hour
		lookbacks = append(lookbacks, option{formatHours(lb), strconv.Itoa(d) + " days", lb == q.Lookback})
	}
	data["Lookbacks"] = lookbacks
	var models []map[string]string
	for _, m := range attribution.Models {
		models = append(models, map[string]string{"Name": string(m), "Label": modelLabels[m]})
	}
	data["Models"] = models
	var fe *Error
	if errors.As(qerr, &fe) {
		data["Error"] = fe.Message
		return s.render(w, http.StatusBadRequest, "attribution", s.page(r, data))
	} else if qerr != nil {
		return qerr
	}
	rep, err := attribution.Run(s.st, q)
	if err != nil {
		return err
	}
	cur := rep.Currency
	params := func(extra ...string) string {
		v := url.Values{"from": {q.From.Format(time.DateOnly)}, "to": {q.To.Format(time.DateOnly)}, "lookback": {formatHours(q.Lookback)}, "currency": {cur}}
		if q.All {
			v.Set("orders", "all")
		}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v.Encode()
	}
	money := func(minor int64) string { return model.FormatMinor(minor, cur) }
	type cell struct{ Value, Orders, Link string }
	type row struct {
		Channel                        string
		Cells                          []cell
		Assisted, AssistedValue, Ratio string
	}
	var rows []row
	var maxMinor int64 = 1
	for _, c := range rep.Channels {
		rw := row{Channel: c.Channel, Assisted: strconv.FormatInt(c.AssistedOrders, 10), AssistedValue: money(c.AssistedMinor), Ratio: "—"}
		if v, ok := c.AssistRatio(); ok {
			rw.Ratio = strconv.FormatFloat(v, 'f', 2, 64)
		}
		for _, m := range attribution.Models {
			cr := c.Models[m]
			maxMinor = max(maxMinor, cr.Minor)
			rw.Cells = append(rw.Cells, cell{money(cr.Minor), strconv.FormatFloat(cr.Orders, 'f', -1, 64),
				"/reports/attribution/orders?" + params("channel", c.Channel, "model", string(m))})
		}
		rows = append(rows, rw)
	}
	// the grouped bar chart: a group of seven bars per channel
	type bar struct {
		Model      int
		X, Y, W, H float64
		Title      string
	}
	type label struct {
		X    float64
		Text string
	}
	const barW, gap, height = 12.0, 40.0, 140.0
	var chart struct {
		Width  float64
		Bars   []bar
		Labels []label
	}
	x := gap / 2
	for _, c := range rep.Channels {
		start := x
		for i, m := range attribution.Models {
			h := height * float64(c.Models[m].Minor) / float64(maxMinor)
			chart.Bars = append(chart.Bars, bar{i, x, 4 + height - h, barW - 1, h, fmt.Sprintf("%s, %s: %s %s", c.Channel, modelLabels[m], money(c.Models[m].Minor), cur)})
			x += barW
		}
		chart.Labels = append(chart.Labels, label{(start + x) / 2, c.Channel})
		x += gap
	}
	chart.Width = max(x, 800)
	paths := topPaths(rep, 10)
	type pathView struct{ Path, Orders, Value string }
	var pv []pathView
	for _, p := range paths {
		pv = append(pv, pathView{p.Path, strconv.FormatInt(p.Orders, 10), money(p.minor)})
	}
	data["Report"], data["Currency"], data["Currencies"] = rep, cur, rep.Currencies
	data["Confirmed"], data["Orders"], data["Revenue"] = rep.Confirmed, rep.Orders, money(rep.Minor)
	data["Rows"], data["Chart"], data["Paths"] = rows, chart, pv
	var ov []pathView
	for _, o := range s.onsiteRows(rep) {
		ov = append(ov, pathView{o.Name, strconv.FormatInt(o.Orders, 10), money(o.minor)})
	}
	data["Onsite"] = ov
	data["CSV"] = "/reports/attribution/export?" + params("format", "csv")
	return s.render(w, http.StatusOK, "attribution", s.page(r, data))
}

// attributionOrdersPage is GET /reports/attribution/orders: the orders
// behind one cell.
func (s *Server) attributionOrdersPage(w http.ResponseWriter, r *http.Request) error {
	q, err := s.attributionQuery(r)
	if err != nil {
		return err
	}
	channel, m, err := drillDown(r)
	if err != nil {
		return err
	}
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(offset, 0)
	rep, err := attribution.Run(s.st, q)
	if err != nil {
		return err
	}
	const page = 100
	found, total, err := rep.Drill(s.st, channel, m, offset, page)
	if err != nil {
		return err
	}
	type orderView struct {
		ID                  string
		Time                time.Time
		Value, Credit, Path string
	}
	var orders []orderView
	for _, f := range found {
		orders = append(orders, orderView{f.ID, f.Time, model.FormatMinor(f.Minor, f.Currency) + " " + f.Currency,
			model.FormatMinor(f.CreditMinor(), f.Currency) + " (" + strconv.FormatFloat(f.Share*100, 'f', 1, 64) + " %)", pathString(f.Path)})
	}
	back := r.URL.Query()
	back.Del("channel")
	back.Del("model")
	back.Del("offset")
	data := map[string]any{"Channel": channel, "Model": modelLabels[m], "From": q.From.Format(time.DateOnly), "To": q.To.Format(time.DateOnly),
		"Orders": orders, "Back": "/reports/attribution?" + back.Encode()}
	if int64(offset+page) < total {
		more := r.URL.Query()
		more.Set("offset", strconv.Itoa(offset+page))
		data["More"] = "/reports/attribution/orders?" + more.Encode()
	}
	return s.render(w, http.StatusOK, "attribution_orders", s.page(r, data))
}
