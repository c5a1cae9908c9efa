package mailcampaign_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/shoptrail/shoptrail/engine/mailcampaign"
)

// BenchmarkRender renders one recipient's message of a parsed template
// (the per-recipient work of a campaign, without the store).
func BenchmarkRender(b *testing.B) {
	t, err := mailcampaign.ParseTemplate(`<h1>Hello {{.FirstName | default "there"}}</h1><p>Our <a href="https://shop.example/sale?c={{.City}}">sale</a> is on.</p>{{recommend "viewed" 3}}`, "")
	if err != nil {
		b.Fatal(err)
	}
	d := mailcampaign.Data{Email: "ann@example.com", FirstName: "Ann", City: "Paris", Custom: map[string]any{}}
	for b.Loop() {
		if _, _, err := t.Render(nil, d); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRenderConcurrently renders one template for many recipients at once:
// each message has its own recipient's name and products, never another's.
func TestRenderConcurrently(t *testing.T) {
	tpl, err := mailcampaign.ParseTemplate(`<p>Hi {{.FirstName}}</p>{{range .Viewed}}<i>{{.}}</i>{{end}}`, `Hi {{.FirstName}} {{upper .City}}`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				name := fmt.Sprintf("N%d-%d", i, j)
				h, text, err := tpl.Render(nil, mailcampaign.Data{FirstName: name, City: "c" + name, Viewed: []string{"p" + name}, Custom: map[string]any{}})
				if err != nil {
					t.Error(err)
					return
				}
				if h != "<p>Hi "+name+"</p><i>p"+name+"</i>" || text != "Hi "+name+" C"+strings.ToUpper(name) {
					t.Errorf("%s got %q / %q", name, h, text)
					return
				}
			}
		}()
	}
	wg.Wait()
}
