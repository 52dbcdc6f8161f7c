"""The TradingSystem operator (kopf): `kopf run -m trading_operator.handlers`.

The package lives in `operator/trading_operator/` and is installed as `trading_operator`: a
package named `operator` would shadow the standard library's."""
