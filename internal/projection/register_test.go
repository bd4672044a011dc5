package projection_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/internal/projection"
	"github.com/bookscatalog/catalog/store"
	"github.com/bookscatalog/catalog/store/memstore"
)

// TestRegister checks that one call registers both stages, with stores of
// their own under the names the service has always used (renaming one
// would leave an instance's store on disk behind), and that the App plans
// the read model's topics with the settings Topics.Specs declares, though
// nobody declares them: a changelog left uncompacted would lose views.
func TestRegister(t *testing.T) {
	var opened []string
	app, err := eskafka.NewApp(eskafka.AppConfig{
		// Nothing here contacts the broker: the address is never dialled.
		Config: eskafka.Config{Brokers: []string{"127.0.0.1:1"}, Service: "shop", Partitions: 3, InstanceID: "test"},
		OpenStore: func(name string) (store.Store, error) {
			opened = append(opened, name)
			return memstore.New(), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)

	m := projection.Register(app, projection.Codecs{})

	if want := []string{"booksbyauthor-links", "booksbyauthor-view"}; !slices.Equal(opened, want) {
		t.Errorf("stores opened %v, want %v", opened, want)
	}
	stages := app.Stages()
	if got, want := slices.Sorted(maps.Keys(stages)), []string{"booksbyauthor.links", "booksbyauthor.view"}; !slices.Equal(got, want) {
		t.Errorf("stages registered %v, want %v", got, want)
	}
	if links, view := m.Stages()[0], m.Stages()[1]; stages["booksbyauthor.links"] != links || stages["booksbyauthor.view"] != view {
		t.Error("the stages registered are not the read model's")
	}
	if m.View() != stages["booksbyauthor.view"] {
		t.Error("View is not the stage that keeps the views")
	}
	for _, s := range m.Stages() {
		if s.Linger() != 0 {
			t.Errorf("stage %s lingers %v by default, want 0", s.Group(), s.Linger())
		}
	}

	plan, err := app.Plan()
	if err != nil {
		t.Fatal(err)
	}
	planned := map[string]eskafka.TopicSpec{}
	for _, s := range plan {
		planned[s.Name] = s
	}
	topics := projection.BooksByAuthorTopics("shop")
	if m.Topics() != topics {
		t.Errorf("read model's topics %+v, want %+v", m.Topics(), topics)
	}
	for _, want := range topics.Specs() {
		got, ok := planned[want.Name]
		if !ok {
			t.Errorf("topic %s not planned", want.Name)
			continue
		}
		if !maps.Equal(got.Configs, want.Configs) {
			t.Errorf("topic %s planned with %v, want %v", want.Name, got.Configs, want.Configs)
		}
	}
	// The aggregates' topics the stages read and write are in the plan
	// too, so that the read model never starts on a missing topic.
	for _, name := range []string{"shop.books.events", "shop.authors.events", "shop.books.commands"} {
		if _, ok := planned[name]; !ok {
			t.Errorf("topic %s not planned", name)
		}
	}

	// The stores are the read model's own: registering it twice is an
	// error Start would return, not two models sharing a store.
	projection.Register(app, projection.Codecs{})
	if _, err := app.Plan(); err == nil {
		t.Error("registering the read model twice: no error")
	}
}

// TestRegisterWithLinger: WithLinger reaches both of the read model's
// stages.
func TestRegisterWithLinger(t *testing.T) {
	app, err := eskafka.NewApp(eskafka.AppConfig{
		Config: eskafka.Config{Brokers: []string{"127.0.0.1:1"}, Service: "shop", Partitions: 3, InstanceID: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	m := projection.Register(app, projection.Codecs{}, projection.WithLinger(25*time.Millisecond))
	for _, s := range m.Stages() {
		if s.Linger() != 25*time.Millisecond {
			t.Errorf("stage %s lingers %v, want 25ms", s.Group(), s.Linger())
		}
	}
}

// TestRegisterKeepsTheAppsLinger: without WithLinger, the stages linger as
// the App's configuration says.
func TestRegisterKeepsTheAppsLinger(t *testing.T) {
	app, err := eskafka.NewApp(eskafka.AppConfig{
		Config: eskafka.Config{Brokers: []string{"127.0.0.1:1"}, Service: "shop", Partitions: 3, InstanceID: "test", Linger: 7 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	for _, s := range projection.Register(app, projection.Codecs{}).Stages() {
		if s.Linger() != 7*time.Millisecond {
			t.Errorf("stage %s lingers %v, want the App's 7ms", s.Group(), s.Linger())
		}
	}
}
