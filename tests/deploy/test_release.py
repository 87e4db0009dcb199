"""The release's version is one number everywhere a user or a tool reads it: Cargo.toml and
Cargo.lock, the CHANGELOG's newest release (with its upgrade notes, which the release workflow
publishes as the release's notes), the image tag the Kubernetes manifests run, and the versions
of the MSI and the .deb, which scripts/package takes from Cargo (scripts/test-packages checks
the built ones: MSI ProductVersion, .deb Version, file names, `--version`).

Also: the test workflow runs scripts/test where contributors look, as the release workflow builds.

Run from the repository's root: python3 -m unittest discover -s tests/deploy
"""

import pathlib
import re
import subprocess
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
RELEASE_NOTES = ROOT / "scripts" / "release-notes"


def text(path):
    return (ROOT / path).read_text(encoding="utf-8")


def cargo_version():
    package = text("Cargo.toml").split("\n[", 1)[0]
    return re.search(r'(?m)^version = "([^"]+)"$', package).group(1)


def changelog_headings():
    return re.findall(r"(?m)^## (.+)$", text("CHANGELOG.md"))


class ReleaseVersionTest(unittest.TestCase):
    def setUp(self):
        self.version = cargo_version()

    def test_the_version_is_a_plain_major_minor_patch(self):
        # The MSI takes no pre-release suffix (scripts/build-msi).
        self.assertRegex(self.version, r"^\d+\.\d+\.\d+$")

    def test_cargo_lock_has_the_crates_version(self):
        entry = re.search(r'(?m)^name = "appproxy_exporter"\nversion = "([^"]+)"$', text("Cargo.lock"))
        self.assertIsNotNone(entry, "no appproxy_exporter package in Cargo.lock")
        self.assertEqual(entry.group(1), self.version)

    def test_the_changelogs_newest_release_is_this_version_below_an_empty_unreleased_heading(self):
        headings = changelog_headings()
        self.assertEqual(headings[0], "Unreleased")
        self.assertRegex(headings[1], rf"^{re.escape(self.version)} - \d{{4}}-\d{{2}}-\d{{2}}$")
        unreleased = text("CHANGELOG.md").split("## Unreleased", 1)[1].split("\n## ", 1)[0]
        self.assertEqual(unreleased.strip(), "", "entries under Unreleased belong to the next release")

    def test_the_release_notes_tell_upgraders_what_changed(self):
        result = subprocess.run([str(RELEASE_NOTES), self.version], capture_output=True, text=True, cwd=ROOT)
        self.assertEqual(result.returncode, 0, result.stderr)
        notes = result.stdout
        self.assertTrue(notes.startswith(f"## {self.version} - "), notes[:200])
        self.assertNotIn("\n## ", notes.rstrip("\n").split("\n", 1)[1], "the notes run into another release")
        self.assertIn("### Upgrading", notes)
        # Each renamed label is named with its new name in the upgrade notes.
        upgrading = notes.split("### Upgrading", 1)[1].split("\n### ", 1)[0]
        for old, new in (("endpoint", "graph_endpoint"), ("service", "connector_service")):
            with self.subTest(label=old):
                self.assertRegex(upgrading, rf"`{old}`[^\n]*`{new}`|`{new}`[^\n]*`{old}`")

    def test_release_notes_of_an_unknown_version_fail(self):
        result = subprocess.run([str(RELEASE_NOTES), "0.0.99"], capture_output=True, text=True, cwd=ROOT)
        self.assertNotEqual(result.returncode, 0)

    def test_the_manifests_run_the_image_of_this_version(self):
        images = re.findall(r"(?m)^\s+image: (\S+)$", text("deploy/kubernetes/deployment.yaml"))
        self.assertEqual(images, [f"ghcr.io/appproxy-exporter/appproxy_exporter:{self.version}"])

    def test_the_msi_and_the_deb_take_their_version_from_cargo(self):
        # The MSI: scripts/package passes `cargo pkgid`'s version to build-msi, which hands it to
        # wixl as $(var.Version); the .deb: cargo-deb takes the package's, unless overridden.
        self.assertIn('version=$(cargo pkgid --locked)', text("scripts/package"))
        self.assertIn('scripts/build-msi "$version"', text("scripts/package"))
        self.assertIn('Version="$(var.Version)"', text("deploy/windows/appproxy_exporter.wxs"))
        self.assertIn('-D "Version=$version"', text("scripts/build-msi"))
        deb = text("Cargo.toml").split("[package.metadata.deb]", 1)[1].split("\n[", 1)[0]
        self.assertNotRegex(deb, r"(?m)^version\s*=", "[package.metadata.deb] overrides the version")


class WorkflowTest(unittest.TestCase):
    """CI where contributors look: scripts/test on every push and pull request, in the container
    the release workflow builds in."""

    def test_the_test_workflow_runs_scripts_test_on_every_push_and_pull_request(self):
        workflow = text(".github/workflows/test.yml")
        self.assertRegex(workflow, r"(?m)^on:\n  push:\n    branches: \[\"\*\*\"\]\n  pull_request:\n")
        self.assertRegex(workflow, r"(?m)^        run: scripts/test$")

    def test_the_test_workflow_runs_in_the_release_workflows_container(self):
        def container(path):
            match = re.search(r"(?m)^    container:\n      image: (\S+)\n      options: (.+)$", text(path))
            self.assertIsNotNone(match, f"{path} has no job container")
            return match.groups()

        self.assertEqual(container(".github/workflows/test.yml"), container(".github/workflows/release.yml"))


if __name__ == "__main__":
    unittest.main()
