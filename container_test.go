package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dockerfile returns the Dockerfile's instructions, continuation lines
// joined, comments dropped: each as its keyword and the rest.
func dockerfile(t *testing.T) [][2]string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		out = append(out, [2]string{strings.ToUpper(kw), strings.TrimSpace(rest)})
	}
	return out
}

// TestDockerfile checks what the image promises without a Docker daemon:
// a Go build stage, then the static binary alone on a minimal base, a
// non-root user, the home as a volume, a health check with `p2ptun wait`.
func TestDockerfile(t *testing.T) {
	var froms []string
	final := map[string][]string{} // instructions of the last stage
	for _, in := range dockerfile(t) {
		switch kw := in[0]; kw {
		case "FROM":
			froms = append(froms, in[1])
			clear(final)
		case "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL",
			"RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "ONBUILD":
			final[kw] = append(final[kw], in[1])
		default:
			t.Fatalf("Dockerfile: unknown instruction %q", kw)
		}
	}
	if len(froms) != 2 || !strings.HasPrefix(froms[0], "golang:") || !strings.HasSuffix(froms[0], " AS build") {
		t.Fatalf("stages %q: want a golang:… AS build stage, then the image", froms)
	}
	if base := froms[1]; !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
		t.Errorf("final base %q: want distroless/static or scratch (a static binary needs no more)", base)
	}
	if len(final["RUN"]) != 0 {
		t.Errorf("the final stage runs %q: it has no shell", final["RUN"])
	}
	if u := final["USER"]; len(u) != 1 || strings.HasPrefix(u[0], "0") || strings.HasPrefix(u[0], "root") {
		t.Errorf("USER %q: want one non-root user", u)
	}
	home := ""
	for _, env := range final["ENV"] {
		for _, kv := range strings.Fields(env) {
			if v, ok := strings.CutPrefix(kv, "P2PTUN_HOME="); ok {
				home = v
			}
		}
	}
	if home == "" || !slices.Equal(final["VOLUME"], []string{`["` + home + `"]`}) {
		t.Errorf("VOLUME %q, P2PTUN_HOME %q: want the home as the one volume", final["VOLUME"], home)
	}
	if hc := final["HEALTHCHECK"]; len(hc) != 1 || !strings.Contains(hc[0], `CMD ["/usr/local/bin/p2ptun", "wait"`) {
		t.Errorf("HEALTHCHECK %q: want p2ptun wait", hc)
	}
	if ep := final["ENTRYPOINT"]; !slices.Equal(ep, []string{`["/usr/local/bin/p2ptun"]`}) {
		t.Errorf("ENTRYPOINT %q: want p2ptun", ep)
	}
	b, _ := os.ReadFile("Dockerfile")
	if !strings.Contains(string(b), "CGO_ENABLED=0 go build") {
		t.Error("the build is not static (CGO_ENABLED=0)")
	}
	t.Run("compose", func(t *testing.T) { checkCompose(t, home) })
}

// checkCompose checks contrib/compose/compose.yaml's structure without a
// YAML parser: spaces only, the service built from this repository and
// its home on a named volume at the image's home.
func checkCompose(t *testing.T, home string) {
	const path = "contrib/compose/compose.yaml"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top []string
	for i, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "\t") {
			t.Errorf("%s:%d: a tab (YAML indents with spaces)", path, i+1)
		}
		if line != "" && line[0] != ' ' && line[0] != '#' {
			top = append(top, line)
		}
	}
	if !slices.Equal(top, []string{"services:", "volumes:"}) {
		t.Errorf("%s: top-level keys %q, want services: and volumes:", path, top)
	}
	text := string(b)
	for _, want := range []string{"      context: ../..\n", "      - p2ptun-home:" + home + "\n", "  p2ptun-home:\n", `command: ["daemon"`} {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q", path, strings.TrimSpace(want))
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "../..", "Dockerfile")); err != nil {
		t.Errorf("the build context holds no Dockerfile: %v", err)
	}
}

// TestDockerImage builds the image and runs p2ptun in it, where a Docker
// daemon answers; `make docker` in .ci/run does the same.
func TestDockerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skipf("no Docker daemon (docker info: %v): the image is not built", err)
	}
	tag := "p2ptun-test:" + filepath.Base(t.TempDir())
	if out, err := exec.Command("docker", "build", "--build-arg", "VERSION=v0.0.0-test", "-t", tag, ".").CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	out, err := exec.Command("docker", "run", "--rm", tag, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "p2ptun v0.0.0-test ") {
		t.Fatalf("docker run --version: %v %q", err, out)
	}
}
