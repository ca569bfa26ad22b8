"""METEOR 1.5 as the MS-COCO caption evaluation runs it: the official jar through Java.

The jar (meteor-1.5.jar with its paraphrase data) ships in the `pycocoevalcap` package
(`pip install -e .[test]`); Java must be on the PATH. It runs as
`java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm`: one `SCORE ||| ref ||| ... ||| hyp`
line per image returns that image's statistics, then one `EVAL ||| stats ||| ...` line
returns each image's score and the corpus score. When Java or the jar is missing, or the
jar fails, `meteor` returns None and the reason.
"""
import os
import shutil
import subprocess


def find_jar():
    try:
        import pycocoevalcap
    except ImportError:
        return None, "the pycocoevalcap package (which ships meteor-1.5.jar) is not installed: pip install -e .[test]"
    jar = os.path.join(list(pycocoevalcap.__path__)[0], "meteor", "meteor-1.5.jar")
    if not os.path.exists(jar):
        return None, "%s is missing" % jar
    return jar, None


def meteor(references, candidates, timeout=600):
    """references: id -> list of strings; candidates: id -> string.

    Returns (corpus score, per-id scores, None) or (None, None, reason).
    """
    java = shutil.which("java")
    if java is None:
        return None, None, "Java is not installed (METEOR 1.5 is a Java program)"
    jar, reason = find_jar()
    if jar is None:
        return None, None, reason
    keys = list(candidates)
    if not keys:
        return None, None, "there are no captions to score"
    clean = lambda s: " ".join(s.replace("|||", "").split())  # noqa: E731
    score_lines = ["SCORE ||| %s ||| %s" % (" ||| ".join(clean(r) for r in references[k]),
                                            clean(candidates[k])) for k in keys]
    try:
        proc = subprocess.Popen([java, "-jar", "-Xmx2G", os.path.basename(jar), "-", "-",
                                 "-stdio", "-l", "en", "-norm"], cwd=os.path.dirname(jar),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        stats = []
        for line in score_lines:  # the jar answers each SCORE line before the next
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            stats.append(proc.stdout.readline().strip())
        proc.stdin.write("EVAL ||| %s\n" % " ||| ".join(stats))
        proc.stdin.flush()
        per_image = {k: float(proc.stdout.readline()) for k in keys}
        score = float(proc.stdout.readline())
        proc.stdin.close()
        proc.wait(timeout=timeout)
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        try:
            proc.kill()
        except Exception:
            pass
        return None, None, "the METEOR jar failed: %s" % e
    return score, per_image, None
