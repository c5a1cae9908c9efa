package channel

import "testing"

func TestGroup(t *testing.T) {
	for _, tt := range []struct{ source, medium, campaign, want string }{
		{"(direct)", "(none)", "", Direct},
		{"google", "cpc", "", PaidSearch},
		{"Google", "CPC", "", PaidSearch},
		{"bing", "ppc", "", PaidSearch},
		{"facebook", "paid_social", "", PaidSocial},
		{"facebook", "referral", "", OrganicSocial},
		{"instagram", "social", "", OrganicSocial},
		{"newsletter", "social-media", "", OrganicSocial},
		{"google", "organic", "", OrganicSearch},
		{"duckduckgo", "referral", "", OrganicSearch},
		{"youtube", "cpc", "", PaidVideo},
		{"youtube", "referral", "", OrganicVideo},
		{"amazon", "cpc", "", PaidShopping},
		{"partner", "cpc", "summer-shop", PaidShopping},
		{"etsy", "referral", "", OrganicShopping},
		{"anything", "cpc", "cross-network", CrossNetwork},
		{"criteo", "display", "", Display},
		{"criteo", "cpm", "", Display},
		{"criteo", "retargeting", "", PaidOther},
		{"blog.example.org", "referral", "", Referral},
		{"newsletter", "email", "", Email},
		{"email", "(not set)", "", Email},
		{"gmail", "email", "", Email},
		{"awin", "affiliate", "", Affiliates},
		{"spotify", "audio", "", Audio},
		{"sms", "text", "", SMS},
		{"app", "web-push", "", MobilePush},
		{"x", "y", "", Unassigned},
	} {
		if got := Group(tt.source, tt.medium, tt.campaign); got != tt.want {
			t.Errorf("Group(%q, %q, %q) = %s, want %s", tt.source, tt.medium, tt.campaign, got, tt.want)
		}
	}
}

func TestVisit(t *testing.T) {
	sites := Sites{Own: []string{"shop.example", "checkout.shop.example"}, Excluded: []string{"paypal.com"}}
	for _, tt := range []struct {
		name, url, ref      string
		external            bool
		source, medium, chn string
	}{
		{"no referrer", "https://shop.example/", "", false, "", "", ""},
		{"internal", "https://shop.example/p", "https://shop.example/", false, "", "", ""},
		{"www is the same site", "https://www.shop.example/p", "https://shop.example/", false, "", "", ""},
		{"own checkout host", "https://shop.example/thanks", "https://checkout.shop.example/pay", false, "", "", ""},
		{"excluded gateway", "https://shop.example/thanks", "https://www.paypal.com/x", false, "", "", ""},
		{"google search", "https://shop.example/", "https://www.google.co.uk/", true, "google", "organic", OrganicSearch},
		{"facebook link", "https://shop.example/", "https://l.facebook.com/l.php", true, "facebook", "referral", OrganicSocial},
		{"t.co", "https://shop.example/", "https://t.co/abc", true, "twitter", "referral", OrganicSocial},
		{"gmail", "https://shop.example/", "https://mail.google.com/", true, "gmail", "email", Email},
		{"referral", "https://shop.example/", "https://blog.example.org/a", true, "blog.example.org", "referral", Referral},
		{"utm wins over referrer", "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=bf", "https://www.google.com/", true, "newsletter", "email", Email},
		{"utm without referrer", "https://shop.example/?utm_source=fb&utm_medium=paid_social", "", true, "fb", "paid_social", PaidOther},
		{"gclid", "https://shop.example/?gclid=x", "", true, "google", "cpc", PaidSearch},
		{"utm wins over gclid", "https://shop.example/?gclid=x&utm_source=bing&utm_medium=cpc", "", true, "bing", "cpc", PaidSearch},
		{"fbclid alone is not paid", "https://shop.example/?fbclid=x", "", true, "facebook", "referral", OrganicSocial},
		{"msclkid", "https://shop.example/?msclkid=x", "https://www.bing.com/", true, "bing", "cpc", PaidSearch},
		{"utm_source only", "https://shop.example/?utm_source=partner", "", true, "partner", "(not set)", Unassigned},
		// with a referrer the query is parsed only when it may hold tags
		{"untagged query, internal referrer", "https://shop.example/p/1?color=white&size=42", "https://shop.example/c/shoes", false, "", "", ""},
		{"escaped utm name, internal referrer", "https://shop.example/p?%75tm_source=news&utm%5Fmedium=email", "https://shop.example/", true, "news", "email", Email},
		{"gclid, internal referrer", "https://shop.example/p?gclid=x", "https://shop.example/", true, "google", "cpc", PaidSearch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr, ok := sites.Visit(tt.url, tt.ref)
			if ok != tt.external {
				t.Fatalf("external = %v, want %v (%+v)", ok, tt.external, tr)
			}
			if tr.Source != tt.source || tr.Medium != tt.medium || tr.Channel != tt.chn {
				t.Errorf("got %s / %s → %s, want %s / %s → %s", tr.Source, tr.Medium, tr.Channel, tt.source, tt.medium, tt.chn)
			}
		})
	}
}

// TestVisitShortcut: Visit decides the shop's own pages without parsing;
// its answer is the parsing one's for every pair.
func TestVisitShortcut(t *testing.T) {
	sites := Sites{Own: []string{"shop.example"}, Excluded: []string{"paypal.com"}}
	urls := []string{
		"", "https://shop.example/", "https://shop.example", "http://shop.example/p?x=1", "https://www.shop.example/p#f",
		"https://SHOP.example/", "https://shop.example./", "https://shop.example:443/", "https://u@shop.example/",
		"https://[::1]/", "https://shop..example/", "https://.shop.example/", "https://shop.example/a%20b",
		"https://shop.example/%zz", "https://shop.example/a b", "https://shop.example/\x7f", "https://shop.example/é",
		"https://other.example/", "https://www.google.com/", "https://l.facebook.com/l.php", "android-app://com.google.android.gm/",
		"https://shop.example/?utm_source=x", "https://shop.example/?%75tm_source=x", "https://shop.example/?gclid=1",
		"https://www.paypal.com/x", "https://blog.shop.example/", "ftp://shop.example/", "https:///p", "https://-/",
	}
	for _, page := range urls {
		for _, ref := range urls {
			got, gotOK := sites.Visit(page, ref)
			want, wantOK := sites.visit(page, ref)
			if got != want || gotOK != wantOK {
				t.Errorf("Visit(%q, %q) = %+v, %v; parsing gives %+v, %v", page, ref, got, gotOK, want, wantOK)
			}
		}
	}
}
