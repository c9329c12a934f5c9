package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// completion runs the completion function of p2ptun's bash script with the
// words typed so far (the last is the one being completed), as bash does
// on TAB, and returns COMPREPLY. The script calls the binary back, found
// on PATH as p2ptun.
func bashComplete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	prog := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _p2ptun_complete; printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", append([]string{"-c", prog, "bash", script}, words...)...)
	cmd.Env = append(harness.Env(), "PATH="+filepath.Dir(harness.Binary(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("completing %q: %v", words, err)
	}
	return strings.Fields(string(out))
}

// writeOutput runs p2ptun with args, checks it succeeds, and writes its
// output to a file named name.
func writeOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, errOut, code := harness.Run(t, args...)
	if code != 0 || out == "" {
		t.Fatalf("p2ptun %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed (Debian package bash)")
	}
	script := writeOutput(t, "p2ptun.bash", "completion", "bash")
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"p2ptun", "acc"}, []string{"access"}},
		{[]string{"p2ptun", "access", "de"}, []string{"deny"}},
		{[]string{"p2ptun", "listen", "--allow-a"}, []string{"--allow-all"}},
		{[]string{"p2ptun", "comp"}, []string{"completion"}},
		// Flags before the command, and arguments after it.
		{[]string{"p2ptun", "--home", "/nonexistent", "rel"}, []string{"relay", "reload"}},
	} {
		got := bashComplete(t, script, tc.words...)
		if !slices.Equal(got, tc.want) {
			t.Errorf("completing %q = %q, want %q", tc.words, got, tc.want)
		}
	}
}

// TestZshAndFishCompletionParse checks the scripts with each shell's own
// parser, where the shell is installed (.ci/run installs both).
func TestZshAndFishCompletionParse(t *testing.T) {
	for _, shell := range []string{"zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			if _, err := exec.LookPath(shell); err != nil {
				t.Skipf("%s is not installed (Debian package %s): its completion script is not checked", shell, shell)
			}
			script := writeOutput(t, "p2ptun."+shell, "completion", shell)
			if out, err := exec.Command(shell, "-n", script).CombinedOutput(); err != nil {
				t.Fatalf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}
}

func TestCompletionNamesAShell(t *testing.T) {
	_, errOut, code := harness.Run(t, "completion", "ksh")
	if code != 2 || !strings.Contains(errOut, "bash, zsh, fish") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("completion ksh: exit %d, stderr %q; want 2 and one line naming the shells", code, errOut)
	}
}

// TestManPageRenders renders `p2ptun man` with man-db, groff's warnings on:
// any warning fails the test.
func TestManPageRenders(t *testing.T) {
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man is not installed (Debian packages man-db and groff-base)")
	}
	page := writeOutput(t, "p2ptun.1", "man")
	cmd := exec.Command("man", "--warnings=all", "-l", page)
	cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat", "LC_ALL=C.UTF-8")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("man -l: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"p2ptun - forward TCP", "COMMANDS", "completion", "~/.p2ptun"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
}
