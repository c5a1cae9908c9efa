package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoptrail/shoptrail/engine/apikey"
	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/model"
	"github.com/shoptrail/shoptrail/engine/redact"
	"github.com/shoptrail/shoptrail/engine/settings"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
	"github.com/shoptrail/shoptrail/search"
)

func (s *Server) page(r *http.Request, data map[string]any) map[string]any {
	data["User"] = r.Context().Value(adminUser{})
	data["DiskProblem"] = s.diskProblem()
	return data
}

// users is GET /users: search by email.
func (s *Server) users(w http.ResponseWriter, r *http.Request) error {
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	data := map[string]any{"Q": q}
	if q != "" {
		users, err := s.st.SearchUsers(q, 100)
		if err != nil {
			return err
		}
		data["Users"] = users
	}
	return s.render(w, http.StatusOK, "users", s.page(r, data))
}

// userPage is GET /users/{email}: the profile.
func (s *Server) userPage(w http.ResponseWriter, r *http.Request) error {
	email, err := track.NormaliseEmail(r.PathValue("email"))
	if err != nil {
		return errorf(http.StatusNotFound, "not_found", "email", "no such user")
	}
	a, p, err := s.userSvc.Get(email)
	if err != nil {
		return userError(email, err)
	}
	confirmed, err := s.userSvc.ConfirmsOrders()
	if err != nil {
		return err
	}
	orders, revenue := p.Counted(confirmed)
	data := map[string]any{"Email": email, "Profile": p, "Subscribed": a.IsSubscribed != nil && *a.IsSubscribed,
		"Orders": orders, "Revenue": revenue, "ConfirmedOnly": confirmed, "Unconfirmed": p.Orders - p.VerifiedOrders}
	attrs := a.Flat()
	delete(attrs, "email")
	delete(attrs, "isSubscribed")
	data["Attributes"] = attrs
	sessions, touchpoints, err := s.userSvc.Visits(email)
	if err != nil {
		return err
	}
	slices.Reverse(sessions)
	slices.Reverse(touchpoints)
	data["Sessions"], data["Touchpoints"] = sessions, touchpoints
	if s.segs != nil {
		if data["Segments"], err = s.segs.ProfileSegments(model.UserProfileID(email)); err != nil {
			return err
		}
	}
	evs, err := s.tracker.Events(track.Query{Email: email, Limit: 100})
	if err != nil {
		return err
	}
	data["Events"] = evs
	return s.render(w, http.StatusOK, "user", s.page(r, data))
}

// productsPerPage is how many main products a page of the Products list
// shows.
const productsPerPage = 25

// products is GET /products: the feed's status and imports, the
// catalogue (paged and filtered, hidden and unpublished products too), and
// the product IDs events name but the feed lacks.
func (s *Server) products(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	data := map[string]any{"Count": s.catalog.Count(), "Q": v.Get("q"), "Message": v.Get("message"), "Jobs": s.catalog.Jobs(),
		"Status": v.Get("status"), "Visibility": v.Get("visibility"), "Stock": v.Get("stock"), "Sort": v.Get("sort"),
		"Brand": v.Get("brand"), "Category": v.Get("category")}
	if f := s.cfg.Feed; f.URL != "" {
		data["FeedURL"], data["Interval"] = redact.URL(s.cfg.Feed.URL), f.Interval.String()
	}
	if rep, err := s.catalog.Report(); err == nil {
		data["Report"] = &rep
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	q, problem := listQuery(v)
	status := http.StatusOK
	if problem != "" {
		data["Message"], status = problem, http.StatusBadRequest
	} else {
		items, res, err := s.catalog.Search(q)
		switch {
		case errors.Is(err, search.ErrTextTooLong):
			data["Message"] = fmt.Sprintf("Search for at most %d characters.", search.MaxTextLen)
		case errors.Is(err, catalog.ErrRebuilding):
			data["Message"] = strings.TrimPrefix(err.Error(), "catalog: ") + "."
		case errors.Is(err, search.ErrNoIndex):
		case err != nil:
			return err
		}
		data["Items"], data["Total"], data["Page"] = items, res.Total, q.Page
		named := func(terms []search.FacetTerm) []search.FacetTerm {
			return slices.DeleteFunc(slices.Clone(terms), func(t search.FacetTerm) bool { return t.Value == "" })
		}
		data["Brands"], data["Categories"] = named(res.Facets["brand"]), named(res.Facets["categories"])
		pages := max(1, int((res.Total+productsPerPage-1)/productsPerPage))
		data["Pages"] = pages
		at := func(page int) string {
			u := url.Values{}
			for _, k := range []string{"q", "status", "visibility", "stock", "sort", "brand", "category"} {
				if x := v.Get(k); x != "" {
					u.Set(k, x)
				}
			}
			u.Set("page", strconv.Itoa(page))
			return "/products?" + u.Encode()
		}
		if q.Page > 1 {
			data["Prev"] = at(q.Page - 1)
		}
		if q.Page < pages {
			data["Next"] = at(q.Page + 1)
		}
	}
	unknown, err := s.st.UnknownProducts(50)
	if err != nil {
		return err
	}
	data["Unknown"] = unknown
	return s.render(w, status, "products", s.page(r, data))
}

// listQuery reads the Products list's filters; problem says what is wrong
// with one.
func listQuery(v url.Values) (q search.Query, problem string) {
	q = search.Query{For: search.ForAdmin, Text: v.Get("q"), Brand: v.Get("brand"), Category: v.Get("category"), Size: productsPerPage, Page: 1, Sort: "title"}
	if len(q.Brand) > maxFilterLen || len(q.Category) > maxFilterLen {
		return q, fmt.Sprintf("A brand or category filter may have at most %d bytes.", maxFilterLen)
	}
	switch st := v.Get("status"); st {
	case "", model.StatusPublished, model.StatusUnpublished, model.StatusDraft, model.StatusPrivate, model.StatusArchived:
		q.Status = st
	default:
		return q, "The status filter must be published, unpublished, draft, private or archived."
	}
	switch vis := v.Get("visibility"); vis {
	case "", model.VisibilityVisible, model.VisibilityCatalog, model.VisibilitySearch, model.VisibilityHidden:
		q.Visibility = vis
	default:
		return q, "The visibility filter must be visible, catalog, search or hidden."
	}
	switch v.Get("stock") {
	case "":
	case "in":
		q.InStock = true
	default:
		return q, "The stock filter must be “in”."
	}
	switch sort := v.Get("sort"); sort {
	case "", "title":
	case "price", "-price":
		q.Sort = sort
	default:
		return q, "Sort by title, price or -price."
	}
	if strings.TrimSpace(q.Text) != "" && v.Get("sort") == "" {
		q.Sort = "" // by relevance
	}
	if raw := v.Get("page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 1000 {
			return q, "The page must be a whole number from 1 to 1000."
		}
		q.Page = n
	}
	return q, ""
}

// recommendationsShown is how many products each kind of recommendation
// shows on a product's page.
const recommendationsShown = 8

// productPage is GET /products/{id}: a product with its variations,
// attributes, and the recommendations shoppers would get for it. A
// variation's page is its main product's.
func (s *Server) productPage(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	it, err := s.catalog.Product(id)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "not_found", "id", "no product "+id)
	}
	if err != nil {
		return err
	}
	if it.MainID != "" && it.MainID != id {
		if _, err := s.catalog.Product(it.MainID); err == nil {
			http.Redirect(w, r, "/products/"+url.PathEscape(it.MainID)+"#v-"+url.PathEscape(id), http.StatusSeeOther)
			return nil
		}
	}
	data := map[string]any{"Item": it, "Description": model.PlainText(it.Description), "InStock": it.InStock()}
	var children []catalog.Item
	for _, cid := range it.Children {
		if c, err := s.catalog.Product(cid); err == nil {
			children = append(children, c)
		}
	}
	data["Children"] = children
	var notes []string
	recommend := func(key, what string, get func() ([]catalog.Item, error)) error {
		items, err := get()
		switch {
		case errors.Is(err, catalog.ErrRebuilding):
			notes = append(notes, what+": "+strings.TrimPrefix(err.Error(), "catalog: "))
		case errors.Is(err, search.ErrNoIndex):
		case err != nil:
			return err
		}
		data[key] = items
		return nil
	}
	if err := recommend("Similar", "Similar products", func() ([]catalog.Item, error) { return s.catalog.Similar(id, recommendationsShown) }); err != nil {
		return err
	}
	if err := recommend("Viewed", "Viewed together", func() ([]catalog.Item, error) {
		return s.catalog.Together(store.ViewedTogether, id, recommendationsShown)
	}); err != nil {
		return err
	}
	if err := recommend("Bought", "Bought together", func() ([]catalog.Item, error) {
		return s.catalog.Together(store.BoughtTogether, id, recommendationsShown)
	}); err != nil {
		return err
	}
	data["Notes"] = notes
	return s.render(w, http.StatusOK, "product", s.page(r, data))
}

// uploadFeed is POST /products/upload: a feed file from the browser. The
// file is spooled to the data directory as it arrives (never held in
// memory) and imported as a job; the Products page shows its progress.
func (s *Server) uploadFeed(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFeedBody)
	if s.catalog.Busy() {
		return s.productsMessage(w, r, "An import is already running; try again in a moment.")
	}
	if err := s.diskErr(); err != nil {
		return s.productsMessage(w, r, "The import was refused: "+s.diskProblem())
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return s.productsMessage(w, r, "Choose a CSV file to import.")
	}
	var file *os.File
	var size int64
	var name string
	force := false
	defer func() {
		if file != nil {
			file.Close()
		}
	}()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return s.productsMessage(w, r, fmt.Sprintf("The file is larger than %d bytes.", tooBig.Limit))
		}
		if err != nil {
			return s.productsMessage(w, r, "The upload could not be read; choose the file again.")
		}
		switch part.FormName() {
		case "force":
			v, _ := io.ReadAll(io.LimitReader(part, 16))
			force = string(v) == "on" || string(v) == "true"
		case "feed":
			if file != nil || part.FileName() == "" {
				continue
			}
			name = part.FileName()
			if file, size, err = s.spool(part); err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					return s.productsMessage(w, r, fmt.Sprintf("The file is larger than %d bytes.", tooBig.Limit))
				}
				var unread *bodyError
				if errors.As(err, &unread) {
					return s.productsMessage(w, r, "The upload could not be read; choose the file again.")
				}
				return err
			}
		}
	}
	if file == nil || size == 0 {
		return s.productsMessage(w, r, "Choose a CSV file to import.")
	}
	f := file
	job, err := s.catalog.StartImport(f, size, name, catalog.ImportOptions{Force: force}, func() { f.Close() })
	switch {
	case errors.Is(err, catalog.ErrBusy):
		return s.productsMessage(w, r, "An import is already running; try again in a moment.")
	case errors.Is(err, store.ErrDiskFull):
		return s.productsMessage(w, r, "The import was refused: "+s.diskProblem())
	case err != nil:
		return err
	}
	file = nil // the job closes it
	return s.productsMessage(w, r, fmt.Sprintf("Importing %s (job %s); the imports below show how far it is.", name, job.ID))
}

// syncWait is how long POST /products/sync waits for the sync to end before
// answering that it still runs (well under the server's write timeout).
const syncWait = 10 * time.Second

// syncFeed is POST /products/sync: fetch [feed] url now. A sync that takes
// longer than syncWait goes on in the background.
func (s *Server) syncFeed(w http.ResponseWriter, r *http.Request) error {
	if s.syncer == nil {
		return s.productsMessage(w, r, "No [feed] url is configured.")
	}
	if s.catalog.Busy() {
		return s.productsMessage(w, r, "An import is already running; try again in a moment.")
	}
	syncer := s.syncer
	type result struct {
		imported bool
		err      error
	}
	done := make(chan result, 1)
	go func() {
		imported, err := syncer.Sync(context.Background()) // outlives the request; bounded by [feed] timeout
		if err != nil && !errors.Is(err, catalog.ErrBusy) && !errors.Is(err, store.ErrDiskFull) {
			s.log.Error("feed sync", "url", redact.URL(s.cfg.Feed.URL), "err", redact.Error(err))
		}
		done <- result{imported, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(syncWait):
		return s.productsMessage(w, r, "The feed is still being fetched and imported; the last import below shows the result when it ends.")
	}
	imported, err := res.imported, res.err
	switch {
	case errors.Is(err, catalog.ErrBusy):
		return s.productsMessage(w, r, "An import is already running; try again in a moment.")
	case errors.Is(err, store.ErrDiskFull):
		return s.productsMessage(w, r, "The sync was refused: "+s.diskProblem())
	case err != nil:
		return s.productsMessage(w, r, "The sync failed; see the report below.")
	case !imported:
		return s.productsMessage(w, r, "The feed has not changed since the last sync.")
	}
	return s.productsMessage(w, r, "The feed was fetched and imported.")
}

func (s *Server) productsMessage(w http.ResponseWriter, r *http.Request, msg string) error {
	http.Redirect(w, r, "/products?message="+urlQueryEscape(msg), http.StatusSeeOther)
	return nil
}

// settingsPage is GET /settings.
func (s *Server) settingsPage(w http.ResponseWriter, r *http.Request) error {
	return s.renderSettings(w, r, http.StatusOK, map[string]any{"Message": r.URL.Query().Get("message")})
}

func (s *Server) renderSettings(w http.ResponseWriter, r *http.Request, status int, data map[string]any) error {
	acc := s.live.Get()
	if _, ok := data["Account"]; !ok {
		data["Account"] = acc
	}
	data["TimeoutHours"] = strconv.FormatFloat(acc.SessionTimeout.Hours(), 'f', -1, 64)
	keys, err := s.st.APIKeys()
	if err != nil {
		return err
	}
	slices.Reverse(keys)
	data["Keys"], data["Scopes"] = keys, model.AllScopes()
	return s.render(w, status, "settings", s.page(r, data))
}

// saveSettings is POST /settings.
func (s *Server) saveSettings(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	acc := settings.Account{VisitFromReferrer: r.PostFormValue("visit_from_referrer") == "on"}
	for _, line := range strings.Split(r.PostFormValue("allowed_origins"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			acc.AllowedOrigins = append(acc.AllowedOrigins, line)
		}
	}
	hours, err := strconv.ParseFloat(strings.Replace(strings.TrimSpace(r.PostFormValue("session_timeout_hours")), ",", ".", 1), 64)
	if err != nil {
		return s.renderSettings(w, r, http.StatusBadRequest, map[string]any{"Account": acc, "Error": "The session timeout must be a number of hours, such as 12."})
	}
	acc.SessionTimeout = time.Duration(hours * float64(time.Hour))
	var fe *settings.FieldError
	if err := s.live.Set(acc); errors.As(err, &fe) {
		return s.renderSettings(w, r, http.StatusBadRequest, map[string]any{"Account": acc, "Error": fe.Error()})
	} else if err != nil {
		return err
	}
	s.log.Info("account settings changed", "visit_from_referrer", acc.VisitFromReferrer, "session_timeout", acc.SessionTimeout.String(), "allowed_origins", len(acc.AllowedOrigins))
	http.Redirect(w, r, "/settings?message="+urlQueryEscape("Saved."), http.StatusSeeOther)
	return nil
}

// createKey is POST /settings/keys: the new key is shown once, on this
// answer only.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	r.ParseForm()
	secret, k, err := apikey.New(r.PostFormValue("name"), r.PostForm["scope"], s.now())
	if errors.Is(err, apikey.ErrInvalid) {
		return s.renderSettings(w, r, http.StatusBadRequest, map[string]any{"Error": strings.TrimPrefix(err.Error(), "apikey: invalid: ")})
	}
	if err != nil {
		return err
	}
	if err := s.st.PutAPIKey(k); err != nil {
		return err
	}
	s.log.Info("api key created", "name", k.Name, "prefix", k.Prefix)
	return s.renderSettings(w, r, http.StatusOK, map[string]any{"NewKey": secret, "NewKeyName": k.Name})
}

// revokeKey is POST /settings/keys/{id}/revoke.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	k, err := s.st.RevokeAPIKey(r.PathValue("id"))
	if err != nil {
		return err
	}
	s.log.Info("api key revoked", "name", k.Name, "prefix", k.Prefix)
	http.Redirect(w, r, "/settings?message="+urlQueryEscape("Revoked the key “"+k.Name+"”."), http.StatusSeeOther)
	return nil
}

const eventSnippets = `<!-- category page -->
<script>shoptrail('track', 'category_view', {category_id: '11', category: 'Running shoes'});</script>
<!-- product page -->
<script>shoptrail('track', 'product_view', {product_id: '1001', name: 'Trail Runner 3', price: 139.68, currency: 'EUR'});</script>
<!-- add to cart (in the button's click handler) -->
<script>shoptrail('track', 'add_to_cart', {product_id: '1001', quantity: 1, price: 139.68, currency: 'EUR'});</script>
<!-- search results -->
<script>shoptrail('track', 'search', {query: 'trail shoes'});</script>
<!-- checkout -->
<script>shoptrail('track', 'checkout', {items: [{product_id: '1001', quantity: 1}]});</script>
<!-- when you know the shopper: login, newsletter sign-up, order -->
<script>shoptrail('identify', {email: 'jane@example.com'});</script>
<!-- thank-you page, filled in by your server -->
<script>shoptrail('track', 'order', {order_id: 'A-17', value: 99.9, currency: 'EUR', items: [{product_id: '1001', quantity: 1, price: 99.9}]});</script>`

// install is GET /install: the snippets for this installation, and a
// check whether events arrive.
func (s *Server) install(w http.ResponseWriter, r *http.Request) error {
	endpoint := s.cfg.HTTP.PublicURL
	if endpoint == "" {
		endpoint = "http://" + s.cfg.HTTP.Public
	}
	data := map[string]any{"Endpoint": endpoint, "Snippet": s.Snippet(endpoint), "EventSnippets": eventSnippets}
	if r.URL.Query().Get("check") != "" {
		data["Checked"] = true
		evs, err := s.tracker.Events(track.Query{Limit: 1})
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			data["Last"] = evs[0]
		}
	}
	return s.render(w, http.StatusOK, "install", s.page(r, data))
}
