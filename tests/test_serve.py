"""`mlclip serve` through FastAPI's TestClient: text and image search on a small index, the
languages and health routes, the worker's batching and cache, and every bad request answered
with a 4xx JSON error naming the problem (never a 500, never a file outside the collection)."""

from __future__ import annotations

import io
import os
import shutil
import threading

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install -e '.[dev]')")
pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed (pip install -e '.[dev]')")

from fastapi.testclient import TestClient  # noqa: E402

from mlclip_cli.api import Index, load  # noqa: E402
from mlclip_cli.errors import MlclipError  # noqa: E402
from mlclip_cli.serve import ServeConfig, create_app, require_extra  # noqa: E402
from mlclip_cli.serve.config import is_loopback  # noqa: E402

from conftest import assert_one_line_error  # noqa: E402

TOKEN = "a-test-token-of-sufficient-length"
LOCAL = "http://127.0.0.1:8000"  # the Host a browser on this machine sends


@pytest.fixture(scope="module")
def served(german_gallery, tmp_path_factory):
    """The gallery's collection with a symlink out of it planted before indexing (so it is listed),
    the index saved, and the extension loaded once."""
    collection = tmp_path_factory.mktemp("serve") / "collection"
    shutil.copytree(german_gallery["collection"], collection)
    outside = collection.parent / "outside"
    outside.mkdir()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(outside / "secret.jpg")  # unlike every image of the world
    (collection / "escape.jpg").symlink_to(outside / "secret.jpg")
    model = load(german_gallery["extension"])
    index = Index.build(model, collection)
    folder = index.save(collection.parent / "index")
    assert "escape.jpg" in index.paths  # the collection lists it: only serving refuses it
    return {"model": model, "index": index, "folder": folder, "collection": collection,
            "captions": german_gallery["captions"], "outside": outside}


def _app(served, **limits):
    config = ServeConfig(index=served["folder"], **limits)
    return create_app(config, model=served["model"], index=Index.load(served["folder"]))


@pytest.fixture(scope="module")
def client(served):
    with TestClient(_app(served), base_url=LOCAL) as client:
        yield client


def _first(client, caption, **params):
    response = client.get("/search", params={"q": caption, "k": 5, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_text_search_finds_the_captioned_image_first(client, served):
    for path, caption in served["captions"]["en"]:
        body = _first(client, caption)
        assert body["language"] == "en" and 0 < body["confidence"] <= 1
        assert body["query"] == caption and body["latency_ms"] > 0
        assert [r["rank"] for r in body["results"]] == [1, 2, 3, 4, 5]
        assert body["results"][0]["path"] == path, (caption, body["results"][:2])
        scores = [r["score"] for r in body["results"]]
        assert scores == sorted(scores, reverse=True)
        assert body["results"][0]["url"] == "/image/" + path


def test_german_queries_find_their_images_because_the_pack_learnt_german(client, served):
    german = served["captions"]["de"]
    answers = [_first(client, caption) for _, caption in german]
    assert all(a["language"] == "de" for a in answers)
    right = [a["results"][0]["path"] == path for a, (path, _) in zip(answers, german)]
    assert all(right[:4]) and sum(right) >= len(german) - 1, right
    frozen = [_first(client, caption, lang="en")["results"][0]["path"] == path for path, caption in german]
    assert sum(frozen) <= len(german) // 2, frozen  # the same words through the English tower alone


def test_a_named_language_is_used_and_reported_with_full_confidence(client, served):
    path, caption = served["captions"]["de"][0]
    body = client.get("/search", params={"q": caption, "lang": "de", "k": 3}).json()
    assert body["language"] == "de" and body["confidence"] == 1.0 and body["results"][0]["path"] == path
    english_tower = client.get("/search", params={"q": caption, "lang": "en", "k": 3}).json()
    assert english_tower["language"] == "en"
    assert english_tower["results"][0]["score"] != body["results"][0]["score"]  # another tower encoded it


def test_post_json_is_a_text_query(client, served):
    path, caption = served["captions"]["de"][1]
    body = client.post("/search", json={"q": caption, "k": 2}).json()
    assert body["language"] == "de" and len(body["results"]) == 2 and body["results"][0]["path"] == path


def test_image_upload_finds_the_same_image_first(client, served):
    path = served["captions"]["en"][2][0]
    data = (served["collection"] / path).read_bytes()
    response = client.post("/search?k=4", files={"image": ("query.jpg", data, "image/jpeg")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] is None and body["query"] == "image" and len(body["results"]) == 4
    assert body["results"][0]["path"] == path and body["results"][0]["score"] > 0.99
    raw = client.post("/search", content=data, headers={"Content-Type": "image/jpeg"}).json()
    assert raw["results"][0]["path"] == path
    form_k = client.post("/search", files={"image": ("q.jpg", data, "image/jpeg")}, data={"k": "2"}).json()
    assert len(form_k["results"]) == 2


def test_languages_and_health(client, served):
    languages = client.get("/languages").json()
    assert languages["languages"] == ["en", "de"] and languages["default"] == "auto"
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["images"] == len(served["index"]) and health["queries"] >= 0


def test_image_route_serves_listed_files_and_thumbnails(client, served):
    path = served["captions"]["en"][0][0]
    response = client.get("/image/" + path)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content == (served["collection"] / path).read_bytes()
    thumb = client.get("/image/" + path, params={"thumb": "1"})
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).format == "JPEG"


def test_the_page_and_its_files_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="q"' in page.text and 'id="lang"' in page.text and 'id="latency"' in page.text
    for name in ("/static/app.js", "/static/style.css"):
        assert client.get(name).status_code == 200
    everything = page.text + client.get("/static/app.js").text + client.get("/static/style.css").text
    assert "http://" not in everything and "https://" not in everything  # no CDN, no external font


@pytest.mark.parametrize("encoders", [1, 3])
def test_concurrent_queries_batched_by_the_workers_match_single_queries(served, encoders):
    app = _app(served, cache_size=0, encoders=encoders)
    engine = app.state.engine
    try:
        queries = [(c, lang) for lang in ("en", "de") for _, c in served["captions"][lang]] * 3
        alone = [engine.text(q, lang, 5).result() for q, lang in queries[:len(queries) // 3]]
        futures = []
        barrier = threading.Barrier(4)

        def submit(part):
            barrier.wait()
            futures.extend((i, engine.text(q, lang, 5)) for i, (q, lang) in part)

        parts = [list(enumerate(queries))[i::4] for i in range(4)]
        threads = [threading.Thread(target=submit, args=(part,)) for part in parts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for i, future in futures:
            answer, single = future.result(), alone[i % len(alone)]
            assert [h.path for h in answer.hits] == [h.path for h in single.hits]
            np.testing.assert_allclose([h.score for h in answer.hits], [h.score for h in single.hits], atol=1e-5)
        assert engine.stats()["queries"] == len(queries) + len(alone)
    finally:
        engine.close()


def test_the_query_cache_answers_a_repeat_with_the_same_hits(served):
    app = _app(served, cache_size=2)
    engine = app.state.engine
    try:
        caption = served["captions"]["de"][0][1]
        first = engine.text(caption, "auto", 3).result()
        again = engine.text(caption, "auto", 3).result()
        assert not first.cached and again.cached and again.hits == first.hits and again.language == "de"
        for _, other in served["captions"]["en"][:3]:  # pushes the first one out of an LRU of 2
            engine.text(other, "auto", 3).result()
        assert not engine.text(caption, "auto", 3).result().cached
        stats = engine.stats()
        assert stats["cache_hits"] == 1 and stats["cache_misses"] == 5 and stats["cache_size"] == 2
    finally:
        engine.close()


# ------------------------------------------------------------------------------------------- bad requests


def _bad(response, status: int, *fragments: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and "Traceback" not in body["error"]
    for fragment in fragments:
        assert fragment in body["error"], body["error"]


def test_bad_text_queries(client):
    _bad(client.get("/search", params={"q": ""}), 400, "q:", "empty")
    _bad(client.get("/search", params={"q": "   "}), 400, "empty")
    _bad(client.get("/search"), 400, "q:", "missing")
    _bad(client.get("/search", params={"q": "a" * 1001}), 400, "1001 characters", "at most 1000")
    _bad(client.get("/search", params={"q": "ein Stern", "lang": "xx"}), 400, "lang", "unknown language code 'xx'")
    _bad(client.get("/search", params={"q": "ein Stern", "lang": "ko"}), 400, "no language pack for 'ko'", "en, de")
    _bad(client.get("/search", params={"q": "파란 별"}), 400, "matches none of", "(en, de)")  # auto: Korean is neither


def test_bad_k(client):
    _bad(client.get("/search", params={"q": "a red star", "k": "0"}), 400, "k:", "1 to 100")
    _bad(client.get("/search", params={"q": "a red star", "k": str(10 ** 6)}), 400, "k:", "1000000")
    _bad(client.get("/search", params={"q": "a red star", "k": "ten"}), 400, "k:", "'ten'")
    _bad(client.post("/search", json={"q": "a red star", "k": 0}), 400, "k:")


def test_bad_bodies(client):
    _bad(client.post("/search", content=b"{not json", headers={"Content-Type": "application/json"}), 400,
         "not valid JSON")
    _bad(client.post("/search", json=["a list"]), 400, "JSON object")
    _bad(client.post("/search", json={"q": "star", "colour": "red"}), 400, "unknown field", "colour")
    _bad(client.post("/search", content=b"garbage", headers={"Content-Type": "multipart/form-data"}), 400,
         "multipart body")
    _bad(client.post("/search", content=b"--xyz\r\ngarbage without headers\r\n--xyz--\r\n",
                     headers={"Content-Type": "multipart/form-data; boundary=xyz"}), 400, "multipart body")
    _bad(client.post("/search", files={"picture": ("a.jpg", b"...", "image/jpeg")}), 400, "no file field 'image'")
    _bad(client.post("/search", content=b"plain words", headers={"Content-Type": "text/plain"}), 415,
         "content type 'text/plain'")


def test_bad_uploads(served, client):
    _bad(client.post("/search", files={"image": ("notes.jpg", b"this is not an image", "image/jpeg")}), 400,
         "not an image")
    _bad(client.post("/search", files={"image": ("empty.jpg", b"", "image/jpeg")}), 400, "empty")
    with TestClient(_app(served, max_upload_bytes=1000, max_image_pixels=100), base_url=LOCAL) as small:
        big = os.urandom(5000)
        _bad(small.post("/search", files={"image": ("big.jpg", big, "image/jpeg")}), 413, "over the limit")
        _bad(small.post("/search", content=big, headers={"Content-Type": "image/jpeg"}), 413, "over the limit")
        chunks = iter([b"\xff" * 600] * 3)  # chunked, no Content-Length: the server counts while it reads
        _bad(small.post("/search", content=chunks, headers={"Content-Type": "image/jpeg"}), 413,
             "over the limit of 1,000 bytes")
        buffer = io.BytesIO()
        Image.new("RGB", (40, 40)).save(buffer, format="PNG", optimize=True)  # a few hundred bytes, 1600 pixels
        assert len(buffer.getvalue()) < 1000
        _bad(small.post("/search", files={"image": ("wide.png", buffer.getvalue(), "image/png")}), 413,
             "1,600 pixels", "at most 100")


def test_image_paths_outside_the_index_are_refused(served, client):
    collection = served["collection"]
    (collection / "unlisted.jpg").write_bytes(next(collection.glob("*.jpg")).read_bytes())  # added after indexing
    _bad(client.get("/image/unlisted.jpg"), 404, "not an image of this index")
    _bad(client.get("/image/%2e%2e/outside/secret.jpg"), 400, "'..'")
    _bad(client.get("/image/..%2Foutside%2Fsecret.jpg"), 400, "'..'")
    _bad(client.get("/image/a/%2E%2E/%2E%2E/outside/secret.jpg"), 400, "'..'")
    _bad(client.get("/image/%2Fetc%2Fpasswd"), 400, "absolute")
    _bad(client.get("/image/" + str(served["outside"] / "secret.jpg")), 400, "absolute")
    _bad(client.get("/image/escape.jpg"), 403, "outside the collection")
    _bad(client.get("/image/escape.jpg", params={"thumb": "1"}), 403, "outside the collection")
    _bad(client.get("/nowhere"), 404, "not found", "/nowhere")
    _bad(client.delete("/search"), 405, "DELETE")
    _bad(client.get("/static/../collection.py"), 404)


def test_bearer_token_on_every_route_but_health(served):
    with TestClient(_app(served, token=TOKEN)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/").status_code == 200  # the page shell: no data; it asks for the token
        _bad(client.get("/search", params={"q": "a red star"}), 401, "missing bearer token")
        _bad(client.get("/languages", headers={"Authorization": "Bearer wrong"}), 401, "wrong bearer token")
        _bad(client.get("/languages", headers={"Authorization": TOKEN}), 401, "wrong bearer token")
        path = served["captions"]["en"][0][0]
        _bad(client.get("/image/" + path), 401, "bearer token")
        _bad(client.post("/search", json={"q": "a red star"}), 401)
        _bad(client.get("/nowhere"), 401)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/search", params={"q": "a red star"}, headers=auth).status_code == 200
        assert client.get("/image/" + path, headers=auth).status_code == 200


def test_without_a_token_only_requests_addressed_to_loopback_are_answered(client, served):
    assert client.get("/health", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/health", headers={"Host": "[::1]:8000"}).status_code == 200
    # DNS rebinding: a page elsewhere reading the API through a name it rebound to 127.0.0.1
    _bad(client.get("/languages", headers={"Host": "rebound.example:8000"}), 400, "rebound.example",
         "not this server's")
    _bad(client.get("/", headers={"Host": "rebound.example"}), 400, "not this server's")
    with TestClient(_app(served, token=TOKEN), base_url="http://rebound.example") as public:  # the token decides
        assert public.get("/languages", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_config_refuses_a_public_host_without_a_token_and_short_tokens(served):
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.4.5.6")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")
    ServeConfig(index=served["folder"]).check()
    with pytest.raises(MlclipError, match="needs a bearer token"):
        ServeConfig(index=served["folder"], host="0.0.0.0").check()
    ServeConfig(index=served["folder"], host="0.0.0.0", token=TOKEN).check()
    with pytest.raises(MlclipError, match="at least 16 characters"):
        ServeConfig(index=served["folder"], token="short").check()
    with pytest.raises(MlclipError, match="--encoders must be at least 1, not 0"):
        ServeConfig(index=served["folder"], encoders=0).check()
    with pytest.raises(MlclipError, match="no such index folder"):
        ServeConfig(index=served["folder"] / "nope").check()


def test_cli_fails_in_one_line_before_loading_anything(run_cli, served, monkeypatch):
    assert_one_line_error(run_cli("serve", "--index", str(served["folder"]), "--host", "0.0.0.0"),
                          "--host 0.0.0.0", "token")
    assert_one_line_error(run_cli("serve", "--index", str(served["folder"] / "nope")), "no such index folder")
    import mlclip_cli.serve as serve_package

    monkeypatch.setattr(serve_package, "REQUIRED", (*serve_package.REQUIRED, "no_such_module_for_serve"))
    with pytest.raises(MlclipError, match=r"install the serve extra: pip install 'mlclip\[serve\]'"):
        require_extra()
    assert_one_line_error(run_cli("serve", "--index", str(served["folder"])), "pip install 'mlclip[serve]'")


def test_a_model_of_another_image_tower_is_refused(served, tmp_path):
    from mlclip_cli.models.clip import create_untrained
    from mlclip_cli.training.checkpoint import save_weights

    save_weights(create_untrained("mlclip-micro"), tmp_path / "micro", {"model_name": "mlclip-micro"})
    with pytest.raises(MlclipError, match="image tower"):
        create_app(ServeConfig(index=served["folder"]), model=load(str(tmp_path / "micro")))
