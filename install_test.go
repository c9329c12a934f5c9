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

// bashComplete runs the completion function of p2ptun's bash script with the
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

// runMake runs make in the module root with vars, skipping where make is
// missing.
func runMake(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed (Debian package make)")
	}
	cmd := exec.Command("make", args...)
	cmd.Env = harness.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestMakeInstallAndUninstall installs into a staging DESTDIR the way a
// packager does, then uninstalls, which leaves no file behind.
func TestMakeInstallAndUninstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary with make")
	}
	dest, bin := t.TempDir(), t.TempDir()
	vars := []string{"DESTDIR=" + dest, "PREFIX=/usr", "BIN=" + bin}
	runMake(t, append([]string{"install"}, vars...)...)
	want := []string{
		"usr/bin/p2ptun",
		"usr/share/bash-completion/completions/p2ptun",
		"usr/share/fish/vendor_completions.d/p2ptun.fish",
		"usr/share/man/man1/p2ptun.1",
		"usr/share/zsh/site-functions/_p2ptun",
	}
	if got := files(t, dest); !slices.Equal(got, want) {
		t.Fatalf("make install wrote %q, want %q", got, want)
	}
	if out, err := exec.Command(filepath.Join(dest, "usr/bin/p2ptun"), "--version").Output(); err != nil || !strings.HasPrefix(string(out), "p2ptun ") {
		t.Fatalf("installed p2ptun --version: %v %q", err, out)
	}
	runMake(t, append([]string{"uninstall"}, vars...)...)
	if got := files(t, dest); len(got) != 0 {
		t.Fatalf("make uninstall left %q", got)
	}
}

// TestMakeRelease builds two of the release archives (a tar.gz and a zip)
// and checks their contents and SHA256SUMS.
func TestMakeRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles with make")
	}
	for _, tool := range []string{"zip", "unzip", "tar", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian packages zip, unzip, tar and coreutils)", tool)
		}
	}
	dist, bin := filepath.Join(t.TempDir(), "dist"), t.TempDir()
	runMake(t, "release", "DIST="+dist, "BIN="+bin, "VERSION=v9.8.7", "TARGETS=linux/arm64 windows/amd64")
	want := []string{"SHA256SUMS", "p2ptun-v9.8.7-linux-arm64.tar.gz", "p2ptun-v9.8.7-windows-amd64.zip"}
	if got := files(t, dist); !slices.Equal(got, want) {
		t.Fatalf("dist holds %q, want %q", got, want)
	}
	check := exec.Command("sha256sum", "-c", "SHA256SUMS")
	check.Dir = dist
	if out, err := check.CombinedOutput(); err != nil || strings.Count(string(out), ": OK") != 2 {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	listings := map[string][]string{
		"p2ptun-v9.8.7-linux-arm64.tar.gz": {"tar", "tzf"},
		"p2ptun-v9.8.7-windows-amd64.zip":  {"unzip", "-Z1"},
	}
	for archive, list := range listings {
		out, err := exec.Command(list[0], append(list[1:], filepath.Join(dist, archive))...).Output()
		if err != nil {
			t.Fatalf("listing %s: %v", archive, err)
		}
		dir, exe := strings.TrimSuffix(strings.TrimSuffix(archive, ".tar.gz"), ".zip")+"/", "p2ptun"
		if strings.Contains(archive, "windows") {
			exe = "p2ptun.exe"
		}
		for _, f := range []string{exe, "p2ptun.1", "README.md", "completion/p2ptun.bash", "completion/_p2ptun", "completion/p2ptun.fish"} {
			if !slices.Contains(strings.Fields(string(out)), dir+f) {
				t.Errorf("%s lacks %s; it holds:\n%s", archive, dir+f, out)
			}
		}
	}
}

// files lists the regular files under dir, relative and sorted.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var got []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, path)
			got = append(got, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}
