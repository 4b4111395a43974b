"""HTTP handlers for the example shop."""

from flask import Flask, jsonify, request

from app import db

app = Flask(__name__)


@app.get("/users/<username>")
def user(username: str):
    row = db.find_user(db.connect(), username)
    return jsonify(row)


@app.get("/search")
def search():
    term = request.args.get("q", "")
    limit = int(request.args.get("limit", "20"))
    return jsonify(db.search_products(db.connect(), term, limit))


if __name__ == "__main__":
    app.run(host="0.0.0.0", debug=True)
