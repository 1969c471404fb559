package meter_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/lintelhq/lintel/core/wasm/meter"
)

// wat2wasm builds testdata/name.wat with wabt's wat2wasm.
func wat2wasm(t *testing.T, name string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".wasm")
	cmd := exec.Command("wat2wasm", filepath.Join("testdata", name+".wat"), "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm (Debian package wabt): %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// guest is one metered instance.
type guest struct {
	t     *testing.T
	mod   api.Module
	fuel  api.MutableGlobal
	depth api.MutableGlobal
}

func instantiate(t *testing.T, code []byte, b meter.Budget) *guest {
	t.Helper()
	metered, err := meter.Instrument(code, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { rt.Close(ctx) })
	mod, err := rt.Instantiate(ctx, metered)
	if err != nil {
		t.Fatalf("the metered module does not instantiate: %v", err)
	}
	return &guest{t: t, mod: mod,
		fuel:  mod.ExportedGlobal(meter.FuelExport).(api.MutableGlobal),
		depth: mod.ExportedGlobal(meter.DepthExport).(api.MutableGlobal)}
}

func (g *guest) call(name string, params ...uint64) ([]uint64, error) {
	return g.mod.ExportedFunction(name).Call(context.Background(), params...)
}

func (g *guest) fuelLeft() int64 { return int64(g.fuel.Get()) }

func TestMeteredFunctionsComputeWhatTheyDid(t *testing.T) {
	g := instantiate(t, wat2wasm(t, "meter"), meter.Budget{Fuel: 1 << 40, Depth: 1000})
	for _, c := range []struct {
		fn     string
		params []uint64
		want   []uint64
	}{
		{"fib", []uint64{20}, []uint64{6765}},
		{"pair_sum", []uint64{0}, []uint64{3}},
		{"pair_sum", []uint64{1}, []uint64{15}},
		{"leaf", []uint64{12}, []uint64{144}},
		{"mixed", nil, []uint64{3}},
	} {
		got, err := g.call(c.fn, c.params...)
		if err != nil {
			t.Fatalf("%s%v: %v", c.fn, c.params, err)
		}
		if len(got) != len(c.want) || got[0] != c.want[0] {
			t.Errorf("%s%v = %v, want %v", c.fn, c.params, got, c.want)
		}
		if d := g.depth.Get(); d != 1000 {
			t.Errorf("after %s the depth budget is %d, want all 1000 frames back", c.fn, d)
		}
	}
}

func TestEndlessLoopRunsOutOfFuel(t *testing.T) {
	g := instantiate(t, wat2wasm(t, "meter"), meter.Budget{Fuel: 1_000_000, Depth: 1000})
	_, err := g.call("spin")
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("spin: %v, want a trap", err)
	}
	if g.fuelLeft() >= 0 {
		t.Errorf("fuel after the trap is %d, want below zero (how the host tells fuel from other traps)", g.fuelLeft())
	}
}

func TestEndlessRecursionRunsOutOfFrames(t *testing.T) {
	g := instantiate(t, wat2wasm(t, "meter"), meter.Budget{Fuel: 1 << 40, Depth: 500})
	_, err := g.call("down", 0)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("down: %v, want a trap", err)
	}
	if d := g.depth.Get(); d != 0 {
		t.Errorf("depth after the trap is %d, want 0", d)
	}
	if g.fuelLeft() < 0 {
		t.Error("fuel ran out first; the depth bound should have stopped it")
	}
}

func TestFramesWeighByTheirValues(t *testing.T) {
	// wide has 65 params and locals: three frames a call.
	g := instantiate(t, wat2wasm(t, "meter"), meter.Budget{Fuel: 1 << 40, Depth: 30})
	if _, err := g.call("wide", 9); err != nil {
		t.Errorf("ten nested calls of three frames with 30 frames: %v", err)
	}
	if d := g.depth.Get(); d != 30 {
		t.Errorf("after wide the depth budget is %d, want all 30 frames back", d)
	}
	if _, err := g.call("wide", 10); err == nil || g.depth.Get() != 0 {
		t.Errorf("eleven nested calls of three frames with 30 frames: %v, depth %d; want a trap at depth 0", err, g.depth.Get())
	}
}

func TestFuelCountsEachLoopIteration(t *testing.T) {
	g := instantiate(t, wat2wasm(t, "meter"), meter.Budget{Fuel: 1 << 40, Depth: 10})
	before := g.fuelLeft()
	if _, err := g.call("count", 1000); err != nil {
		t.Fatal(err)
	}
	// Each iteration charges the loop's body: local.get, i32.const,
	// i32.sub, local.set, local.get, br_if, end.
	if used := before - g.fuelLeft(); used != 7*1000 {
		t.Errorf("1000 iterations used %d fuel, want 7000", used)
	}
	// Enough fuel for 100 iterations and not 101.
	g.fuel.Set(uint64(700))
	if _, err := g.call("count", 100); err != nil {
		t.Errorf("100 iterations with 700 fuel: %v", err)
	}
	g.fuel.Set(uint64(700))
	if _, err := g.call("count", 101); err == nil {
		t.Error("101 iterations with 700 fuel did not trap")
	}
}

// TestBulkMemoryPaysForItsSize pins a hole in the bound: memory.fill
// counted as one instruction, so a loop filling the whole memory ran
// 65,536 bytes of work per handful of fuel.
func TestBulkMemoryPaysForItsSize(t *testing.T) {
	const fuel = 1_000_000
	g := instantiate(t, wat2wasm(t, "meter"), meter.Budget{Fuel: fuel, Depth: 10})
	if _, err := g.call("fill_forever"); err == nil || g.fuelLeft() >= 0 {
		t.Fatalf("fill_forever: %v, fuel %d; want a trap for fuel", err, g.fuelLeft())
	}
	got, err := g.call("rounds")
	if err != nil {
		t.Fatal(err)
	}
	// Each round fills one 64 KiB page: 4,096 fuel at 16 bytes a unit.
	if max := uint64(fuel/4096 + 1); got[0] > max {
		t.Errorf("%d rounds of a 64 KiB fill on %d fuel, want at most %d", got[0], fuel, max)
	}
	if got[0] < 2 {
		t.Errorf("%d rounds: the charge is far above the fill's size", got[0])
	}
}

func TestLeafFunctionsPayNothing(t *testing.T) {
	g := instantiate(t, wat2wasm(t, "meter"), meter.Budget{Fuel: 5, Depth: 0})
	if _, err := g.call("leaf", 3); err != nil {
		t.Fatalf("a leaf function trapped with no frame left: %v", err)
	}
	if g.fuelLeft() != 5 {
		t.Errorf("leaf used fuel: %d left of 5", g.fuelLeft())
	}
}

func TestInstrumentRefusesWhatItCannotRead(t *testing.T) {
	code := wat2wasm(t, "meter")
	for name, bad := range map[string][]byte{
		"not wasm":  []byte("\x7fELF\x02\x01\x01\x00"),
		"truncated": code[:len(code)-3],
		"version 2": append([]byte("\x00asm\x02\x00\x00\x00"), code[8:]...),
	} {
		if _, err := meter.Instrument(bad, meter.Budget{}); err == nil {
			t.Errorf("%s: instrumented without an error", name)
		}
	}
}

// BenchmarkMetering is the worst case of metering: a tight loop of five
// instructions, and a recursive function whose every call takes a frame.
func BenchmarkMetering(b *testing.B) {
	out := filepath.Join(b.TempDir(), "meter.wasm")
	if o, err := exec.Command("wat2wasm", "testdata/meter.wat", "-o", out).CombinedOutput(); err != nil {
		b.Fatalf("wat2wasm (Debian package wabt): %v\n%s", err, o)
	}
	code, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	metered, err := meter.Instrument(code, meter.Budget{Fuel: 1 << 60, Depth: 1000})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		code []byte
	}{{"plain", code}, {"metered", metered}} {
		ctx := context.Background()
		rt := wazero.NewRuntime(ctx)
		defer rt.Close(ctx)
		mod, err := rt.Instantiate(ctx, c.code)
		if err != nil {
			b.Fatal(err)
		}
		for _, fn := range []struct {
			name  string
			param uint64
		}{{"count", 1000}, {"fib", 15}} {
			call := mod.ExportedFunction(fn.name)
			b.Run(fn.name+"/"+c.name, func(b *testing.B) {
				for range b.N {
					if _, err := call.Call(ctx, fn.param); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
