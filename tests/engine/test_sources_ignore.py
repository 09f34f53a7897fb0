"""Which files a project or a build context holds (windflow.engine.sources.ignore):
.gitignore with git's semantics, .dockerignore with Docker's, on real folders."""

import os

from windflow.engine.sources.ignore import context_files, project_files


def tree(root, files):
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def test_it_keeps_everything_without_ignore_files_but_git_metadata(tmp_path):
    tree(tmp_path, {"a.txt": "", "sub/b.txt": "", ".git/HEAD": "", "sub/.git/HEAD": ""})
    assert project_files(tmp_path) == ["a.txt", "sub/b.txt"]


def test_it_applies_gitignore_negation_dir_only_anchors_and_double_stars(tmp_path):
    tree(
        tmp_path,
        {
            ".gitignore": "\n".join(
                [
                    "# comment",
                    "*.log",
                    "!keep.log",
                    "build/",  # directories named build, at any depth
                    "/secret.txt",  # anchored: only at the root
                    "docs/**/draft.md",
                    "cache",  # file or directory, any depth
                    "\\#hash",
                ]
            ),
            "a.log": "",
            "keep.log": "",
            "sub/b.log": "",
            "build/out.bin": "",
            "src/build/out.bin": "",
            "notbuild": "",
            "build.txt": "",
            "secret.txt": "",
            "sub/secret.txt": "",
            "docs/draft.md": "",
            "docs/x/y/draft.md": "",
            "docs/final.md": "",
            "src/cache": "",
            "#hash": "",
        },
    )
    (tmp_path / "file-named-build").mkdir()
    assert project_files(tmp_path) == [
        ".gitignore",
        "build.txt",
        "docs/final.md",
        "keep.log",
        "notbuild",
        "sub/secret.txt",
    ]


def test_it_does_not_reinclude_below_an_ignored_directory(tmp_path):
    tree(tmp_path, {".gitignore": "vendor/\n!vendor/keep.txt\n", "vendor/keep.txt": ""})
    assert project_files(tmp_path) == [".gitignore"]


def test_it_lets_a_nested_gitignore_win_below_its_folder(tmp_path):
    tree(
        tmp_path,
        {
            ".gitignore": "*.env\n",
            "app/.gitignore": "!prod.env\n/local/\n",
            "app/prod.env": "",
            "app/dev/x.env": "",
            "app/local/a": "",
            "local/a": "",
            "top.env": "",
        },
    )
    assert project_files(tmp_path) == [".gitignore", "app/.gitignore", "app/prod.env", "local/a"]


def test_it_applies_the_dockerignore_of_the_root(tmp_path):
    tree(
        tmp_path,
        {
            ".dockerignore": "node_modules\n**/*.tmp\n/dist\n",
            "node_modules/x/i.js": "",
            "a.tmp": "",
            "deep/b.tmp": "",
            "dist/app.js": "",
            "src/dist/app.js": "",
            "src/app.js": "",
        },
    )
    assert project_files(tmp_path) == [".dockerignore", "src/app.js", "src/dist/app.js"]


def test_it_keeps_the_files_a_compose_project_needs_whatever_the_rules(tmp_path):
    tree(tmp_path, {".gitignore": ".env\nconf/\n", ".env": "A=1", "conf/nginx.conf": "", "x": ""})
    assert project_files(tmp_path, keep=[".env", "conf/nginx.conf"]) == [
        ".env",
        ".gitignore",
        "conf/nginx.conf",
        "x",
    ]


def test_it_reads_a_build_context_as_docker_does(tmp_path):
    tree(
        tmp_path,
        {
            ".dockerignore": "\n".join(
                ["# docker", "*", "!src", "src/**/*.test.js", "!src/keep.test.js", "Dockerfile"]
            ),
            "Dockerfile": "FROM scratch\n",
            "README.md": "",
            "src/app.js": "",
            "src/a/b.test.js": "",
            "src/keep.test.js": "",
            ".git/HEAD": "",
        },
    )
    assert context_files(tmp_path, dockerfile="Dockerfile") == [
        ".dockerignore",
        "Dockerfile",
        "src/app.js",
        "src/keep.test.js",
    ]


def test_it_reincludes_an_exception_below_an_excluded_directory_for_docker(tmp_path):
    tree(
        tmp_path,
        {
            ".dockerignore": "assets\n!assets/logo.png\n",
            "assets/logo.png": "",
            "assets/big.psd": "",
        },
    )
    assert context_files(tmp_path) == [".dockerignore", "assets/logo.png"]


def test_it_sends_git_metadata_in_a_build_context_unless_ignored(tmp_path):
    tree(tmp_path, {"Dockerfile": "", ".git/HEAD": ""})
    assert context_files(tmp_path) == [".git/HEAD", "Dockerfile"]


def test_it_lists_links_but_never_sockets_or_fifos(tmp_path):
    tree(tmp_path, {"a": ""})
    os.symlink("a", tmp_path / "link")
    os.mkfifo(tmp_path / "pipe")
    assert context_files(tmp_path) == ["a", "link"]
    assert project_files(tmp_path) == ["a", "link"]
