"""Example bodies for the OpenAPI docs: a real result of the tiny profile, shortened."""

import json

GRADE_RESULT = json.loads(r"""
{
 "question_id": "Q4",
 "question": "What is \"Positional Encoding\" and why do Transformers need it?",
 "score": 6.0,
 "max_score": 10.0,
 "key_points": [
  {
   "id": "parallel",
   "text": "Transformers process all tokens in parallel rather than sequentially like an RNN, so they have no built-in notion of word order.",
   "weight": 1.0,
   "status": "covered",
   "credit": 0.849,
   "evidence": "Transformers process all tokens in parallel, so they have no notion of order.",
   "similarity": 0.834,
   "judge": {
    "p_yes": 0.2564,
    "p_yes_null": 0.3272,
    "p_yes_reference": 0.3305
   },
   "citation": {
    "location": "Q4 › Answer",
    "quote": "Transformers process all tokens in parallel (unlike RNNs which are sequential)."
   }
  },
  {
   "id": "bag-of-words",
   "text": "Without positional information, sentences with the same words in a different order (\"the dog bit the man\" vs \"the man bit the dog\") would look identical, like a bag of words.",
   "weight": 1.0,
   "status": "missed",
   "credit": 0.149,
   "evidence": null,
   "similarity": 0.4,
   "judge": {
    "p_yes": 0.2216,
    "p_yes_null": 0.2217,
    "p_yes_reference": 0.1916
   },
   "citation": {
    "location": "Q4 › Answer",
    "quote": "Without Positional Encoding, the model would view \"The dog bit the man\" and \"The man bit the dog\" as identical \"Bag of Words\" representations."
   }
  }
 ],
 "misconceptions": [
  {
   "id": "already-ordered",
   "text": "Transformers read tokens one after another like an RNN, so they know the word order without positional encoding.",
   "detected": false,
   "penalty": 0.0,
   "evidence": null,
   "similarity": 0.734,
   "judge": {
    "p_yes": 0.2592,
    "p_yes_null": 0.3426,
    "p_yes_reference": 0.2436
   }
  }
 ],
 "needs_review": false,
 "confidence": 0.29,
 "gate": null,
 "flags": [],
 "removed_text": [],
 "strengths": [
  "Transformers process all tokens in parallel rather than sequentially like an RNN, so they have no built-in notion of word order."
 ],
 "gaps": [
  "Without positional information, sentences with the same words in a different order (\"the dog bit the man\" vs \"the man bit the dog\") would look identical, like a bag of words."
 ],
 "feedback": "Score 6.0/10.\nYou covered: ...\nStudy: Q4 › Answer: \"Without Positional Encoding, ...\"",
 "reference_answer": "Transformers process all tokens in parallel (unlike RNNs which are sequential). Without Positional Encoding, the model w ...",
 "provenance": {
  "engine_version": "0.1.0",
  "document": "transformers_llms.md",
  "document_sha256": "3561b00dec55d013f073656751a3437cdbec31c06fd0d0913db3a253ce5428fa",
  "rubric_version": "420dad508b00",
  "rubric_curated": true,
  "embedder": {
   "id": "minilm",
   "sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
   "runtime": "onnxruntime 1.32.0, int8 export v3"
  },
  "judge": {
   "id": "SmolLM2-135M-Instruct.Q4_1.gguf",
   "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
   "runtime": "llama-cpp-python 0.3.36; SSE3 SSSE3 AVX AVX_VNNI AVX2 F16C FMA BMI2 AVX512 AVX512_VNNI AVX512_BF16 LLAMAFILE OPENMP REPACK"
  },
  "judge_status": "ok",
  "calibration": "calibration-tiny.json@45b475b2b4d4",
  "signals": [
   "embedding",
   "judge"
  ]
 }
}
""")

SESSION = {"id": "9f86d081884c7d65", "candidate": "ada", "document": "transformers_llms", "order": "weakest",
           "state": "open", "position": 1, "total": 3, "current_question_id": "Q7",
           "created_at": "2025-01-01T10:00:00.000000Z", "updated_at": "2025-01-01T10:02:00.000000Z"}
QUESTION = {"id": "Q7", "title": "What are the scaling laws for LLMs?", "document": "transformers_llms",
            "position": 2, "total": 3, "reference": None}
JOB = {"id": "mK2x9Lq0aBcD4eFg", "state": "running", "filename": "answers.jsonl", "document": "transformers_llms",
       "use_judge": True, "total": 120, "done": 37, "errors": 2, "created_at": "2025-01-01T10:00:00.000000Z",
       "updated_at": "2025-01-01T10:01:10.000000Z"}
ATTEMPT = {"id": "0d81270e867644e1915b00f97aa42db3", "session_id": "9f86d081884c7d65", "candidate": "ada",
           "document": "transformers_llms", "question_id": "Q4", "status": "answered", "score": 6.0,
           "answer": "Transformers process all tokens in parallel, so they have no notion of order. ...",
           "result": GRADE_RESULT, "created_at": "2025-01-01T10:01:00.000000Z"}
MISSED = {"question_id": "Q4", "key_point_id": "bag-of-words", "status": "missed",
          "text": GRADE_RESULT["key_points"][1]["text"], "citation": GRADE_RESULT["key_points"][1]["citation"]}
REPORT = {"session_id": "9f86d081884c7d65", "candidate": "ada", "document": "transformers_llms", "state": "finished",
          "answered": 1, "skipped": 1, "total": 2, "average_score": 3.0,
          "items": [{"position": 1, "question_id": "Q4", "title": GRADE_RESULT["question"], "status": "answered",
                     "score": 6.0, "needs_review": False, "attempt_id": ATTEMPT["id"]},
                    {"position": 2, "question_id": "Q7", "title": QUESTION["title"], "status": "skipped",
                     "score": None, "needs_review": None, "attempt_id": "5be1a7e0c7a94c4d8d3c1f0e2b6a9d11"}],
          "missed": [MISSED], "study": [MISSED["citation"]]}
MASTERY = {"document": "transformers_llms", "question_id": "Q4", "key_point_id": "bag-of-words",
           "text": MISSED["text"], "attempts": 2, "latest": 0.149, "mean": 0.125,
           "timeline": [{"at": "2024-12-20T09:00:00.000000Z", "credit": 0.1, "status": "missed"},
                        {"at": "2025-01-01T10:01:00.000000Z", "credit": 0.149, "status": "missed"}]}
