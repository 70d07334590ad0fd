"""Mode bits are enforced for users other than root (default_permissions), and new files are
owned by their creator with the umask applied and the group of a setgid directory inherited."""
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import unittest

from cairnfs import MountedTestCase, run

USER = "cairn-test-user"


def ensure_user():
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        run("useradd", "--no-create-home", "--shell", "/bin/sh", USER)
        return pwd.getpwnam(USER)


def as_user(*cmd, umask="022"):
    script = f"umask {umask}; " + " ".join(f"'{c}'" for c in cmd)
    return subprocess.run(
        ["setpriv", "--reuid", USER, "--regid", USER, "--init-groups", "sh", "-c", script],
        capture_output=True, text=True)


class PermissionTests(MountedTestCase):
    def setUp(self):
        super().setUp()
        self.user = ensure_user()
        # The mount point's parent must be traversable for the test user.
        os.chmod(self.m.base, 0o755)

    def test_non_root_user_is_denied_by_mode_bits(self):
        secret = self.p("secret")
        with open(secret, "w") as f:
            f.write("root only\n")
        os.chmod(secret, 0o600)
        r = as_user("cat", secret)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Permission denied", r.stderr)
        r = as_user("sh", "-c", f"echo x > {self.p('new')}")
        self.assertNotEqual(r.returncode, 0, "the workspace root is 0755 root: creating must fail")
        self.assertFalse(os.path.exists(self.p("new")))

    def test_new_files_belong_to_the_caller_with_umask_applied(self):
        shared = self.p("shared")
        os.mkdir(shared)
        os.chmod(shared, 0o777)
        r = as_user("touch", os.path.join(shared, "mine"), umask="027")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = os.stat(os.path.join(shared, "mine"))
        self.assertEqual((st.st_uid, st.st_gid), (self.user.pw_uid, self.user.pw_gid))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
        # Another user's file in a sticky directory cannot be removed by this user.
        os.chmod(shared, 0o1777)
        open(os.path.join(shared, "roots"), "w").close()
        r = as_user("rm", "-f", os.path.join(shared, "roots"))
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(os.path.exists(os.path.join(shared, "roots")))

    def test_setgid_directory_passes_its_group_on(self):
        d = self.p("team")
        os.mkdir(d)
        os.chown(d, 0, 4242)
        os.chmod(d, 0o2777)
        r = as_user("mkdir", os.path.join(d, "sub"))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = as_user("touch", os.path.join(d, "f"))
        self.assertEqual(r.returncode, 0, r.stderr)
        sub = os.stat(os.path.join(d, "sub"))
        f = os.stat(os.path.join(d, "f"))
        self.assertEqual(sub.st_gid, 4242)
        self.assertTrue(sub.st_mode & stat.S_ISGID, "a subdirectory of a setgid directory is setgid")
        self.assertEqual(f.st_gid, 4242)
        self.assertEqual(f.st_uid, self.user.pw_uid)


    def test_a_write_by_another_user_drops_the_set_id_bits_as_linux_does(self):
        # Through a write-only descriptor (which bypasses the page cache, so the filesystem
        # drops the bits) and through a read-write one (the kernel asks for it): the set-user-ID
        # bit goes, and the set-group-ID bit of a group-executable file; root keeps both.
        for flags in ("O_WRONLY", "O_RDWR"):
            with self.subTest(flags=flags):
                target = self.p(f"setid-{flags}")
                with open(target, "w") as f:
                    f.write("#!/bin/sh\n")
                os.chown(target, self.user.pw_uid, self.user.pw_gid)
                os.chmod(target, 0o6775)
                code = f'import os; fd = os.open("{target}", os.{flags} | os.O_APPEND); os.write(fd, b"x"); os.close(fd)'
                r = as_user("python3", "-c", code)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(stat.S_IMODE(os.stat(target).st_mode), 0o775)
                os.chmod(target, 0o6775)
                fd = os.open(target, getattr(os, flags) | os.O_APPEND)
                os.write(fd, b"y")
                os.close(fd)
                self.assertEqual(stat.S_IMODE(os.stat(target).st_mode), 0o6775)
                # Set-group-ID without group execute stays for a writer in the file's group.
                os.chmod(target, 0o2664)
                r = as_user("python3", "-c", code)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(stat.S_IMODE(os.stat(target).st_mode), 0o2664)

    def test_chown_truncate_and_o_trunc_drop_the_set_id_bits_as_a_plain_directory_does(self):
        # Each case runs on Cairn and on a plain directory of this machine; the modes must match.
        # The daemon drops the bits itself here (the kernel leaves it chown and truncate).
        plain = tempfile.mkdtemp(prefix="cairn-plain-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, plain, True)
        os.chmod(plain, 0o755)
        uid, gid = self.user.pw_uid, self.user.pw_gid
        truncate = "import os, sys; os.truncate(sys.argv[1], 1)"
        ftruncate = "import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.ftruncate(fd, 0); os.close(fd)"
        o_trunc = "import os, sys; os.close(os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC))"
        same_owner = "import os, sys; os.chown(sys.argv[1], -1, -1)"
        cases = [
            # (name, mode, action, owner): actions run as root unless they are scripts, which the
            # test user runs; files belong to the test user unless the owner is root.
            ("root-chown", 0o6775, lambda f: os.chown(f, 0, 0), uid),
            ("root-chown-sgid-no-exec", 0o2664, lambda f: os.chown(f, 0, 0), uid),
            ("root-chown-to-nothing", 0o4755, lambda f: os.chown(f, -1, -1), uid),
            ("root-truncate", 0o6775, lambda f: os.truncate(f, 1), uid),
            ("root-o-trunc", 0o6775, lambda f: os.close(os.open(f, os.O_WRONLY | os.O_TRUNC)), uid),
            ("user-truncate", 0o6775, truncate, uid),
            ("user-ftruncate", 0o6775, ftruncate, uid),
            ("user-o-trunc", 0o6775, o_trunc, uid),
            ("user-o-trunc-sgid-no-exec", 0o2664, o_trunc, uid),
            ("user-chown-to-nothing", 0o6775, same_owner, uid),
            # Neither owner nor writer: refused, and the bits stay.
            ("other-chown-to-nothing", 0o4755, same_owner, 0),
        ]
        outcomes = []
        for name, mode, action, owner in cases:
            with self.subTest(case=name):
                results = []
                for top in (self.m.path, plain):
                    target = os.path.join(top, name)
                    with open(target, "w") as f:
                        f.write("#!/bin/sh\n")
                    os.chown(target, owner, gid if owner else 0)
                    os.chmod(target, mode)
                    if isinstance(action, str):
                        ok = as_user("python3", "-c", action, target).returncode == 0
                    else:
                        action(target)
                        ok = True
                    results.append((ok, oct(stat.S_IMODE(os.stat(target).st_mode))))
                self.assertEqual(results[0], results[1], "Cairn's (success, mode), then the plain directory's")
                outcomes.append(int(results[1][1], 8))
        # Every case starts with a set-ID bit: the plain directory keeps some and drops others,
        # so the comparison covers both.
        self.assertTrue(any(m & 0o6000 for m in outcomes) and any(m & 0o6000 == 0 for m in outcomes), outcomes)


if __name__ == "__main__":
    unittest.main()
