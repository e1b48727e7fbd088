"""ClipFaceShop's selective feature adaptor (method ``clipart``)."""
