"""The training monitor page: one curve per run and series, with the logged points."""
import json
from html.parser import HTMLParser

from neuraltalk.train.monitor import nice_ticks, render, write_monitor
from neuraltalk.train.loop import History


class Curves(HTMLParser):
    def __init__(self):
        super().__init__()
        self.curves = []  # (class, run, number of points)
        self.texts = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "polyline":
            self.curves.append((a["class"], a["data-run"], len(a["points"].split())))

    def handle_data(self, data):
        self.texts.append(data)


def _status(run, n_costs, validations):
    return {"run": run, "iter": [n_costs - 1, 100], "time": "now",
            "cost_history": [[i, 10.0 - 0.1 * i, 10.0 - 0.05 * i] for i in range(n_costs)],
            "val_history": [[i, 5.0 - i / 100] for i in validations]}


def _parse(page):
    parser = Curves()
    parser.feed(page)
    return parser


def test_each_run_has_a_cost_a_smoothed_cost_and_a_validation_curve(tmp_path):
    for status in (_status("hostA_shapes_one", 30, [9, 19, 29]),
                   _status("hostA_shapes_two", 12, [9])):
        (tmp_path / (status["run"] + "_status.json")).write_text(json.dumps(status))
    parser = _parse(open(write_monitor(str(tmp_path))).read())
    assert sorted(parser.curves) == [
        ("cost", "hostA_shapes_one", 30), ("cost", "hostA_shapes_two", 12),
        ("smooth", "hostA_shapes_one", 30), ("smooth", "hostA_shapes_two", 12),
        ("validation", "hostA_shapes_one", 3), ("validation", "hostA_shapes_two", 1)]
    assert "hostA_shapes_one" in "".join(parser.texts)  # the legend names the runs


def test_the_page_needs_no_network_and_no_script():
    page = render([_status("r", 5, [4])])
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page


def test_a_run_name_is_escaped():
    parser = _parse(render([_status("a<b>&c", 3, [])]))
    assert ("cost", "a<b>&c", 3) in parser.curves


def test_unreadable_status_files_are_left_out(tmp_path):
    (tmp_path / "broken_status.json").write_text("{half")
    assert _parse(open(write_monitor(str(tmp_path))).read()).curves == []


def test_axis_ticks_are_round_steps_within_the_range():
    assert nice_ticks(0, 299) == [0, 50, 100, 150, 200, 250]
    assert nice_ticks(3.4, 6.7) == [4.0, 5.0, 6.0]
    assert nice_ticks(2.0, 2.0) == [1.6, 1.8, 2.0, 2.2, 2.4]  # one point: still an axis


def test_the_cost_history_stays_small_and_spans_the_run():
    history = History()
    for it in range(100000):
        history.add_cost(it, 1.0, 1.0)
    assert len(history.costs) <= History.MAX_POINTS
    assert history.costs[0][0] == 0 and history.costs[-1][0] > 99000


def test_perplexities_and_retrieval_scores_get_charts_of_their_own():
    scored = dict(_status("brnn_run", 4, [3]), val_label="retrieval score")
    page = render([_status("lstm_run", 4, [3]), scored])
    assert page.count("<svg") == 3
    assert 'aria-label="retrieval score"' in page and 'aria-label="validation perplexity"' in page
